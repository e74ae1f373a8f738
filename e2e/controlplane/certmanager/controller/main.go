// Command controller runs cert-manager's own controllers (the packages of the pinned
// github.com/cert-manager/cert-manager release) out of cluster, for the pki-issuer e2e control
// plane: the Certificate controllers, the internal approver, the CA issuer and the Issuer /
// ClusterIssuer controllers. It has no leader election, metrics server or ACME wiring: one
// process per control plane, talking to the API server through a kubeconfig.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"

	// Each package registers its controller with controllerpkg in init().
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	// The CA issuer type (Issuer/ClusterIssuer spec.ca), for the side-by-side benchmark.
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
)

// defaultControllers are the controllers the e2e control plane runs unless told otherwise.
var defaultControllers = []string{
	"certificates-trigger",
	"certificates-key-manager",
	"certificates-request-manager",
	"certificates-issuing",
	"certificates-readiness",
	"certificates-revision-manager",
	"certificaterequests-approver",
	"certificaterequests-issuer-ca",
	"issuers",
	"clusterissuers",
}

func main() {
	klog.InitFlags(nil)
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the identity cert-manager runs as")
	controllers := flag.String("controllers", strings.Join(defaultControllers, ","), "comma-separated controller names to run")
	clusterNS := flag.String("cluster-resource-namespace", "cert-manager", "namespace of ClusterIssuer Secrets")
	minBackoff := flag.Duration("certificate-request-minimum-backoff-duration", time.Hour, "first delay after a failed issuance")
	maxBackoff := flag.Duration("certificate-request-maximum-backoff-duration", 32*time.Hour, "longest delay after failed issuances")
	workers := flag.Int("concurrent-workers", 5, "workers per controller")
	qps := flag.Float64("kube-api-qps", 20, "client QPS when the API server has no priority and fairness")
	burst := flag.Int("kube-api-burst", 50, "client burst when the API server has no priority and fairness")
	flag.Parse()
	if err := run(*kubeconfig, *controllers, *clusterNS, *minBackoff, *maxBackoff, *workers, float32(*qps), *burst); err != nil {
		fmt.Fprintln(os.Stderr, "cert-manager controller:", err)
		os.Exit(1)
	}
}

func run(kubeconfig, controllers, clusterNS string, minBackoff, maxBackoff time.Duration, workers int, qps float32, burst int) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	factory, err := controllerpkg.NewContextFactory(ctx, controllerpkg.ContextOptions{
		Kubeconfig:         kubeconfig,
		KubernetesAPIQPS:   qps,
		KubernetesAPIBurst: burst,
		IssuerOptions:      controllerpkg.IssuerOptions{ClusterResourceNamespace: clusterNS},
		CertificateOptions: controllerpkg.CertificateOptions{
			CertificateRequestMinimumBackoffDuration: minBackoff,
			CertificateRequestMaximumBackoffDuration: maxBackoff,
		},
	})
	if err != nil {
		return err
	}

	// Constructing a controller registers its informers; the factories start afterwards.
	known := controllerpkg.Known()
	built := map[string]controllerpkg.Interface{}
	for name := range strings.SplitSeq(controllers, ",") {
		construct, ok := known[name]
		if !ok {
			return fmt.Errorf("unknown controller %q", name)
		}
		c, err := construct(factory)
		if err != nil {
			return fmt.Errorf("controller %s: %w", name, err)
		}
		built[name] = c
	}
	shared, err := factory.Build()
	if err != nil {
		return err
	}
	shared.KubeSharedInformerFactory.Start(ctx.Done())
	shared.SharedInformerFactory.Start(ctx.Done())
	shared.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())

	var wg sync.WaitGroup
	errs := make(chan error, len(built))
	for name, c := range built {
		wg.Go(func() {
			klog.InfoS("starting controller", "name", name)
			if err := c.Run(workers, ctx); err != nil {
				errs <- fmt.Errorf("controller %s: %w", name, err)
				stop()
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

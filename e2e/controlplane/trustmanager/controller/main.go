// trust-manager's Bundle controller for the e2e control plane, written on the packages of the
// pinned trust-manager release: the same controller its command runs, but every listener on
// 127.0.0.1 (its command binds probes and metrics to 0.0.0.0), metrics off, no leader election
// and no validating webhook (the tests write well-formed Bundles).
package main

import (
	"flag"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics/server"

	trustapi "github.com/cert-manager/trust-manager/pkg/apis/trust/v1alpha1"
	"github.com/cert-manager/trust-manager/pkg/bundle"
	"github.com/cert-manager/trust-manager/pkg/bundle/controller"
)

func main() {
	trustNamespace := flag.String("trust-namespace", "cert-manager", "namespace Bundle sources are read from")
	probeAddr := flag.String("probe-addr", "127.0.0.1:0", "readiness probe address (loopback)")
	flag.Parse()
	// --kubeconfig is controller-runtime's own flag (read by ctrl.GetConfig).
	if err := run(*trustNamespace, *probeAddr); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}

func run(trustNamespace, probeAddr string) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	log := klog.NewKlogr()
	ctrl.SetLogger(log)
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(trustapi.AddToScheme(scheme))
	opts := controller.Options{Namespace: trustNamespace}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		LeaderElection:         false,
		HealthProbeBindAddress: probeAddr,
		ReadinessEndpointName:  "/readyz",
		Metrics:                server.Options{BindAddress: "0"},
		Cache:                  bundle.CacheOpts(opts),
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("readiness check: %w", err)
	}
	ctx := ctrl.SetupSignalHandler()
	ctx = logf.IntoContext(ctx, log)
	if err := bundle.SetupWithManager(ctx, mgr, opts); err != nil {
		return fmt.Errorf("bundle controller: %w", err)
	}
	return mgr.Start(ctx)
}

// Command webhook serves cert-manager's admission chain (the packages of the pinned
// github.com/cert-manager/cert-manager release) on 127.0.0.1 for the pki-issuer e2e control
// plane: the CertificateRequest identity plugin (fills spec.username/groups/uid/extra), the
// approval plugin (only a user allowed to `approve` the signer may set Approved/Denied) and
// resource validation. Mutation on /mutate, validation on /validate, /healthz on plain HTTP.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/log"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	acmeinstall "github.com/cert-manager/cert-manager/internal/apis/acme/install"
	cminstall "github.com/cert-manager/cert-manager/internal/apis/certmanager/install"
	metainstall "github.com/cert-manager/cert-manager/internal/apis/meta/install"
	"github.com/cert-manager/cert-manager/internal/webhook/admission/certificaterequest/approval"
	"github.com/cert-manager/cert-manager/internal/webhook/admission/certificaterequest/identity"
	"github.com/cert-manager/cert-manager/internal/webhook/admission/resourcevalidation"
	"github.com/cert-manager/cert-manager/pkg/webhook/admission"
)

func main() {
	klog.InitFlags(nil)
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the identity the webhook runs as")
	port := flag.Int("secure-port", 0, "HTTPS port on 127.0.0.1")
	healthzPort := flag.Int("healthz-port", 0, "plain HTTP /healthz port on 127.0.0.1")
	certFile := flag.String("tls-cert-file", "", "serving certificate (PEM)")
	keyFile := flag.String("tls-private-key-file", "", "serving key (PEM)")
	flag.Parse()
	if err := run(*kubeconfig, *port, *healthzPort, *certFile, *keyFile); err != nil {
		fmt.Fprintln(os.Stderr, "cert-manager webhook:", err)
		os.Exit(1)
	}
}

func run(kubeconfig string, port, healthzPort int, certFile, keyFile string) error {
	if port == 0 || healthzPort == 0 || certFile == "" || keyFile == "" {
		return errors.New("--secure-port, --healthz-port, --tls-cert-file and --tls-private-key-file are required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.SetLogger(klog.NewKlogr())

	restConfig, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	authz, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: client.AuthorizationV1(),
		AllowCacheTTL:             time.Second,
		DenyCacheTTL:              time.Second,
		WebhookRetryBackoff:       &wait.Backoff{Duration: time.Second, Factor: 2, Steps: 2, Cap: 5 * time.Second},
	}.New()
	if err != nil {
		return err
	}
	chain := admission.PluginChain{
		identity.NewPlugin(),
		approval.NewPlugin(authz, client.Discovery()),
		resourcevalidation.NewPlugin(),
	}
	scheme := runtime.NewScheme()
	cminstall.Install(scheme)
	acmeinstall.Install(scheme)
	metainstall.Install(scheme)

	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return err
	}
	server := crwebhook.NewServer(crwebhook.Options{
		Host: "127.0.0.1",
		Port: port,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) {
			c.MinVersion = tls.VersionTLS12
			c.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }
		}},
	})
	server.Register("/mutate", admission.NewCustomMutationWebhook(chain))
	server.Register("/validate", admission.NewCustomValidationWebhook(scheme, chain))

	health := &http.Server{
		Addr:              net.JoinHostPort("127.0.0.1", fmt.Sprint(healthzPort)),
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("ok"))
		}),
	}
	go func() {
		<-ctx.Done()
		_ = health.Close()
	}()
	go func() {
		if err := health.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.ErrorS(err, "healthz server")
			stop()
		}
	}()
	return server.Start(ctx)
}

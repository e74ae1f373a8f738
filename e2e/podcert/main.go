// Command podcert runs the kubelet's own PodCertificate manager
// (k8s.io/kubernetes/pkg/kubelet/podcertificate, the code a 1.36 kubelet runs) for one Pod that
// is bound to this harness's Node, as the kubelet does: as system:node:<node>, with the
// kubelet's informers (PodCertificateRequests and the Node, field-selected to this node).
//
// It prints one JSON line per credential bundle the manager assembles: "issued" for the first,
// "refreshed" for the next. The private key is never printed: only its public key (PKIX DER,
// base64), so the caller can check that the certificate was issued to the kubelet's key.
//
// Trust anchors: when the pod's volume also projects a clusterTrustBundle source by signer
// name, the harness reads it with the kubelet's ClusterTrustBundle manager
// (k8s.io/kubernetes/pkg/kubelet/clustertrustbundle, v1beta1 informer, as the same node) and
// adds the PEM the kubelet would write to the first line ("trustAnchors").
//
// Refresh: the manager takes a clock (NewIssuingManager's last argument; the kubelet passes
// clock.RealClock). After the first bundle, the harness first checks that nothing is refreshed
// on the real clock (-quiet), then moves its clock past the issued PodCertificateRequest's
// status.beginRefreshAt (plus the manager's own jitter of up to 5 minutes) and asks the manager
// to look at the pod again (TrackPod, what the kubelet calls on every pod sync). Everything
// else (the new key, the new request, the API server's checks, pki-issuer's signing) is real.
package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync/atomic"
	"time"

	certificatesv1beta1 "k8s.io/api/certificates/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	certlisters "k8s.io/client-go/listers/certificates/v1beta1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/kubernetes/pkg/kubelet/clustertrustbundle"
	"k8s.io/kubernetes/pkg/kubelet/podcertificate"
	"k8s.io/utils/clock"
)

// jitter is the most the manager adds to beginRefreshAt (podcertificatemanager.go, jitterDuration).
const jitter = 5 * time.Minute

// offsetClock is the real clock moved forward by an offset the harness sets.
type offsetClock struct {
	clock.RealClock
	offset atomic.Int64
}

func (c *offsetClock) Now() time.Time {
	return time.Now().Add(time.Duration(c.offset.Load()))
}

func (c *offsetClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// onePod is the kubelet's pod manager for the one pod of this harness.
type onePod struct{ pod *corev1.Pod }

func (p onePod) GetPodByUID(uid types.UID) (*corev1.Pod, bool) {
	return p.pod, p.pod.UID == uid
}

func (p onePod) GetPods() []*corev1.Pod { return []*corev1.Pod{p.pod} }

type bundle struct {
	Phase          string `json:"phase"`
	Chain          string `json:"chain"`
	PublicKey      string `json:"publicKey"`
	PCR            string `json:"pcr"`
	BeginRefreshAt string `json:"beginRefreshAt"`
	ManagerNow     string `json:"managerNow"`
	PCRs           int    `json:"pcrs"`
	TrustAnchors   string `json:"trustAnchors,omitempty"`
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "podcert: "+format+"\n", a...)
	os.Exit(1)
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the node identity (system:node:<node>)")
	node := flag.String("node", "", "the node name")
	namespace := flag.String("namespace", "", "the pod's namespace")
	podName := flag.String("pod", "", "the pod (bound to -node, with a podCertificate projected volume)")
	volume := flag.String("volume", "", "the projected volume's name")
	timeout := flag.Duration("timeout", 60*time.Second, "how long to wait for each bundle")
	quiet := flag.Duration("quiet", 3*time.Second, "how long the first bundle must stay unrefreshed on the real clock")
	refresh := flag.Bool("refresh", true, "advance the manager's clock past beginRefreshAt and wait for the refreshed bundle")
	flag.Parse()

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fail("kubeconfig: %v", err)
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fail("client: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	pod, err := kc.CoreV1().Pods(*namespace).Get(ctx, *podName, metav1.GetOptions{})
	if err != nil {
		fail("get pod: %v", err)
	}
	sourceIndex := -1
	var anchors *corev1.ClusterTrustBundleProjection
	for _, v := range pod.Spec.Volumes {
		if v.Name == *volume && v.Projected != nil {
			for i, s := range v.Projected.Sources {
				if s.PodCertificate != nil {
					sourceIndex = i
				}
				if s.ClusterTrustBundle != nil && s.ClusterTrustBundle.SignerName != nil {
					anchors = s.ClusterTrustBundle
				}
			}
		}
	}
	if sourceIndex < 0 {
		fail("pod %s/%s has no podCertificate source in volume %q", *namespace, *podName, *volume)
	}

	// The kubelet's informers: PodCertificateRequests of this node, and this Node.
	pcrFactory := informers.NewSharedInformerFactoryWithOptions(kc, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", *node).String()
		}))
	nodeFactory := informers.NewSharedInformerFactoryWithOptions(kc, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", *node).String()
		}))
	pcrs := pcrFactory.Certificates().V1beta1().PodCertificateRequests()
	nodes := nodeFactory.Core().V1().Nodes()
	recorder := record.NewFakeRecorder(100)
	clk := &offsetClock{}
	m := podcertificate.NewIssuingManager(kc, onePod{pod}, recorder, pcrs, nodes, types.NodeName(*node), clk)
	pcrFactory.Start(ctx.Done())
	nodeFactory.Start(ctx.Done())
	go m.Run(ctx)
	go func() {
		for e := range recorder.Events {
			fmt.Fprintf(os.Stderr, "podcert: event: %s\n", e)
		}
	}()

	m.TrackPod(ctx, pod)
	first := wait(ctx, m, pod, *volume, sourceIndex, *timeout, "")
	out := report(pcrs.Lister(), pod, clk, "issued", first)
	if anchors != nil {
		out.TrustAnchors = trustAnchors(ctx, kc, anchors, *timeout)
	}
	emit(out)
	if !*refresh {
		return
	}

	// Nothing is refreshed before beginRefreshAt.
	time.Sleep(*quiet)
	m.TrackPod(ctx, pod)
	time.Sleep(time.Second)
	if _, chain, _ := bundleOf(ctx, m, pod, *volume, sourceIndex); string(chain) != first.chain {
		fail("the bundle changed before beginRefreshAt")
	}
	if n := countPCRs(pcrs.Lister(), pod); n != 1 {
		fail("%d PodCertificateRequests before beginRefreshAt, want 1", n)
	}

	begin, err := time.Parse(time.RFC3339, out.BeginRefreshAt)
	if err != nil {
		fail("beginRefreshAt %q: %v", out.BeginRefreshAt, err)
	}
	target := begin.Add(jitter + 30*time.Second)
	clk.offset.Store(int64(time.Until(target)))
	fmt.Fprintf(os.Stderr, "podcert: manager clock moved to %s (beginRefreshAt %s + jitter)\n", clk.Now().UTC().Format(time.RFC3339), out.BeginRefreshAt)
	m.TrackPod(ctx, pod)
	second := wait(ctx, m, pod, *volume, sourceIndex, *timeout, first.chain)
	emit(report(pcrs.Lister(), pod, clk, "refreshed", second))
}

type issued struct {
	chain     string
	publicKey string
}

func bundleOf(ctx context.Context, m *podcertificate.IssuingManager, pod *corev1.Pod, volume string, idx int) ([]byte, []byte, error) {
	return m.GetPodCertificateCredentialBundle(ctx, pod.Namespace, pod.Name, string(pod.UID), volume, idx)
}

// wait polls the manager until it holds a bundle whose chain differs from `previous`.
func wait(ctx context.Context, m *podcertificate.IssuingManager, pod *corev1.Pod, volume string, idx int, timeout time.Duration, previous string) issued {
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		key, chain, err := bundleOf(ctx, m, pod, volume, idx)
		if err == nil && string(chain) != previous {
			return issued{chain: string(chain), publicKey: publicKeyOf(key)}
		}
		lastErr = err
		time.Sleep(200 * time.Millisecond)
	}
	fail("no new credential bundle within %s: %v", timeout, lastErr)
	return issued{}
}

// publicKeyOf is the PKIX DER (base64) of the public half of the manager's PKCS#8 PEM key.
func publicKeyOf(keyPEM []byte) string {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		fail("the bundle's private key is not PEM")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		fail("the bundle's private key: %v", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		fail("the bundle's private key cannot sign")
	}
	der, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		fail("public key: %v", err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// ofPod is every PodCertificateRequest of this pod, newest last.
func ofPod(lister certlisters.PodCertificateRequestLister, pod *corev1.Pod) []*certificatesv1beta1.PodCertificateRequest {
	all, err := lister.PodCertificateRequests(pod.Namespace).List(labels.Everything())
	if err != nil {
		fail("list PodCertificateRequests: %v", err)
	}
	var mine []*certificatesv1beta1.PodCertificateRequest
	for _, p := range all {
		if p.Spec.PodUID == pod.UID {
			mine = append(mine, p)
		}
	}
	sort.Slice(mine, func(i, j int) bool {
		return mine[i].CreationTimestamp.Before(&mine[j].CreationTimestamp)
	})
	return mine
}

func countPCRs(lister certlisters.PodCertificateRequestLister, pod *corev1.Pod) int {
	return len(ofPod(lister, pod))
}

// report describes a bundle: the newest issued PodCertificateRequest is the one it came from.
func report(lister certlisters.PodCertificateRequestLister, pod *corev1.Pod, clk *offsetClock, phase string, b issued) bundle {
	mine := ofPod(lister, pod)
	out := bundle{Phase: phase, Chain: b.chain, PublicKey: b.publicKey, PCRs: len(mine),
		ManagerNow: clk.Now().UTC().Format(time.RFC3339)}
	for i := len(mine) - 1; i >= 0; i-- {
		if st := mine[i].Status; st.BeginRefreshAt != nil {
			out.PCR = mine[i].Name
			out.BeginRefreshAt = st.BeginRefreshAt.UTC().Format(time.RFC3339)
			break
		}
	}
	if out.PCR == "" {
		fail("no issued PodCertificateRequest of the pod in the informer")
	}
	return out
}

func emit(b bundle) {
	line, err := json.Marshal(b)
	if err != nil {
		fail("json: %v", err)
	}
	fmt.Println(string(line))
}

// trustAnchors is what the kubelet projects for a clusterTrustBundle source selected by signer
// name: its ClusterTrustBundle manager over a v1beta1 informer, as this node.
func trustAnchors(ctx context.Context, kc kubernetes.Interface, src *corev1.ClusterTrustBundleProjection, timeout time.Duration) string {
	factory := informers.NewSharedInformerFactory(kc, 0)
	m, err := clustertrustbundle.NewBetaInformerManager(ctx, factory, 16, time.Minute)
	if err != nil {
		fail("ClusterTrustBundle manager: %v", err)
	}
	factory.Start(ctx.Done())
	optional := src.Optional != nil && *src.Optional
	deadline := time.Now().Add(timeout)
	for {
		pemBytes, err := m.GetTrustAnchorsBySigner(*src.SignerName, src.LabelSelector, optional)
		if err == nil && len(pemBytes) > 0 {
			return string(pemBytes)
		}
		if time.Now().After(deadline) {
			fail("no trust anchors for signer %q within %s: %v", *src.SignerName, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

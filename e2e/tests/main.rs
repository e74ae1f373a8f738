//! The end-to-end suite: the real `pki-issuer` process against the project's test API server,
//! a real control plane (`E2E_APISERVER=kube`) or any cluster named by `E2E_KUBECONFIG`, with
//! the suite playing cert-manager's part, except in `cert_manager`, where real cert-manager does.

mod bad_input;
mod cert_manager;
mod cfssl;
mod chart;
mod csr;
mod csr_access;
mod differential;
mod fake_ca;
mod faults;
mod fixtures;
mod harness;
mod hostile;
mod hostile_ca;
mod hostile_remote;
mod isolation;
mod istio;
mod istio_shapes;
mod kube_faults;
mod kube_server;
mod leak_scan;
mod openbao;
mod pkcs11;
mod pod_cert;
mod prometheus;
mod rotation;
mod scenarios;
mod softhsm;
mod trust;
mod vault;

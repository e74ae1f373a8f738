//! The end-to-end suite: the real `pki-issuer` process against the project's test API server
//! (or any cluster named by `E2E_KUBECONFIG`), with the suite playing cert-manager's part.

mod bad_input;
mod cfssl;
mod chart;
mod csr;
mod csr_access;
mod fake_ca;
mod faults;
mod fixtures;
mod harness;
mod hostile;
mod hostile_ca;
mod leak_scan;
mod openbao;
mod scenarios;
mod vault;

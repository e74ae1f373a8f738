//! Well-known OIDs used by hostile CSRs, and keyUsage bits.

/// commonName.
pub const CN: &str = "2.5.4.3";
/// organizationName.
pub const O: &str = "2.5.4.10";
/// organizationalUnitName.
pub const OU: &str = "2.5.4.11";
/// serialNumber (the subject attribute).
pub const SERIAL_NUMBER: &str = "2.5.4.5";
/// userId (UID).
pub const UID: &str = "0.9.2342.19200300.100.1.1";
/// emailAddress (PKCS#9).
pub const EMAIL_ADDRESS: &str = "1.2.840.113549.1.9.1";
/// domainComponent.
pub const DC: &str = "0.9.2342.19200300.100.1.25";
/// countryName.
pub const C: &str = "2.5.4.6";
/// subjectAltName.
pub const SAN: &str = "2.5.29.17";
/// keyUsage.
pub const KEY_USAGE: &str = "2.5.29.15";
/// extendedKeyUsage.
pub const EKU: &str = "2.5.29.37";
/// basicConstraints.
pub const BASIC_CONSTRAINTS: &str = "2.5.29.19";
/// nameConstraints.
pub const NAME_CONSTRAINTS: &str = "2.5.29.30";
/// subjectKeyIdentifier.
pub const SKI: &str = "2.5.29.14";
/// authorityInfoAccess.
pub const AIA: &str = "1.3.6.1.5.5.7.1.1";
/// EKU serverAuth.
pub const SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";
/// EKU clientAuth.
pub const CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";
/// EKU codeSigning.
pub const CODE_SIGNING: &str = "1.3.6.1.5.5.7.3.3";
/// EKU timeStamping.
pub const TIME_STAMPING: &str = "1.3.6.1.5.5.7.3.8";
/// EKU OCSPSigning.
pub const OCSP_SIGNING: &str = "1.3.6.1.5.5.7.3.9";
/// anyExtendedKeyUsage.
pub const ANY_EKU: &str = "2.5.29.37.0";

/// keyUsage bits (first byte of the BIT STRING).
pub mod ku {
    /// digitalSignature.
    pub const DIGITAL_SIGNATURE: u8 = 0x80;
    /// keyEncipherment.
    pub const KEY_ENCIPHERMENT: u8 = 0x20;
    /// keyCertSign.
    pub const KEY_CERT_SIGN: u8 = 0x04;
    /// cRLSign.
    pub const CRL_SIGN: u8 = 0x02;
}

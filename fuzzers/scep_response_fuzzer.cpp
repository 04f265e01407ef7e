// The SCEP answers a client reads from a server under test: GetCACaps, GetCACert and CertRep
// (signature checked against the CA of testdata/scep/, the SUCCESS envelope decrypted with the
// requester of the same capture, the issued certificate checked). Every input ends in a value
// or an Error: no crash, no leak, no unbounded work (pki/scep.hpp caps every size).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "harness/pki/scep.hpp"

namespace {

// testdata/scep/: the CA of the scepserver the captures came from, and the captured requester
// (scepclient's transient certificate and its throwaway key), so that seeds decrypt.
const char* const kCaPem = R"(-----BEGIN CERTIFICATE-----
MIIDLzCCAhegAwIBAgIBATANBgkqhkiG9w0BAQsFADA5MQswCQYDVQQGEwJVUzEY
MBYGA1UEChMPbWRtY29uZm9ybS10ZXN0MRAwDgYDVQQLEwdTQ0VQIENBMB4XDTI2
MTIwNjExNTExOVoXDTI3MTIwNjExNTExOVowOTELMAkGA1UEBhMCVVMxGDAWBgNV
BAoTD21kbWNvbmZvcm0tdGVzdDEQMA4GA1UECxMHU0NFUCBDQTCCASIwDQYJKoZI
hvcNAQEBBQADggEPADCCAQoCggEBANpVYL1CSuglqQNVBWu+L8Tj+2iM0ngsFtKw
uAF9eWBlMuUNI4LzdW/kEf3e3Ahx9yqA3BSa/F7PCijQM+GQI0Fof3/XudhB+//g
5vNbjWK3GTmk4BiYLMjIu9SWHUI0IWo6M2fzDCXYvPB22FYhACH6mAbQ2v90xJOY
G5kyBW2G/ImMM6NmPENTzg1eJ66ddzpaaGSFMgvhRR4uMZMaZ2bcf/scf/DFPxe8
1gObygYG4c/zJ1nOR+Ya7zdGIaAFTv1dh3Z+9ZA0oScmGkacML6+1iwC7OtL4XoC
w9uuVq9IpC9ftO2O/KqiGpiuS4qO2io4ctHFoZzcy0DKdWamMPcCAwEAAaNCMEAw
DgYDVR0PAQH/BAQDAgEGMA8GA1UdEwEB/wQFMAMBAf8wHQYDVR0OBBYEFFCIAagx
W/t5uGeWNdF2szeyPgB9MA0GCSqGSIb3DQEBCwUAA4IBAQC9z53JBqjPqQ+VBCkI
RU37gxP8qUVLRaSk9sY5Wv9s9qJgrvBj+Hhd4y+trLrWeqMgkvxg3Ky2qW0EUNM3
DzOS5go2u61gNH6ivr47ekxv/P8nYNBncfNTmBtUbOlIhCxIAuAFbeJlexK+K/tr
Cy32KEjsS3iiKvhaHEt5ZyH1ziHjRZNQC7J5XkggYCadKHoliiUqPMXzNc0r90ZS
sHLu489lWfe6ZCiiYmgMSZA6sQxucZqxNdnEAX0eDGHgot44K29kGExhu1zaD2ZZ
fSMnTzCrdmyv8WtBjdhRJUqBGru3G0ZJVp0KEvMTzSa6TqdrM30YgEqhx7K7qGU7
kISN
-----END CERTIFICATE-----
)";
const char* const kRequesterCertPem = R"(-----BEGIN CERTIFICATE-----
MIIDFzCCAf+gAwIBAgIQb+OT50OUb/l6EiqMAZlBqDANBgkqhkiG9w0BAQsFADAs
MRQwEgYDVQQKEwtzY2VwLWNsaWVudDEUMBIGA1UEAxMLU0NFUCBTSUdORVIwHhcN
MjYxMjA2MTE1MTUxWhcNMjYxMjA2MTI1MTUxWjAsMRQwEgYDVQQKEwtzY2VwLWNs
aWVudDEUMBIGA1UEAxMLU0NFUCBTSUdORVIwggEiMA0GCSqGSIb3DQEBAQUAA4IB
DwAwggEKAoIBAQC8DD5ayG4MHYaa3+4/srZ3UdSBTg4oMVTc5AZV8qhtb6rVKI0X
lqbuZ8nh/dB5BvSjJ+Apgi67iFt3KqI+T94kO3feeeGmTMsIagAgxtvpIblapUrB
gZ1tQD0AmXaWEuBNT/mHIgjeN8bAY0YLaftgpEBFLJLdS1p7P8kiCxourkBaAOMg
29J8K9Q+PDDUu4LaYXz4mVJ/+jKA3G5Z7WcU2ciTA60HxObkY+0rwv9XJNCgT8oD
+cd2hxSB1WMbcRixMxdpZdlIXjzItOTyXEf2RVp3D/gkwBv7myKVYqWOAxIRAo1z
oRCRhxwXm6urjheBOs7iNs3vvdfAoUejtmvTAgMBAAGjNTAzMA4GA1UdDwEB/wQE
AwIFoDATBgNVHSUEDDAKBggrBgEFBQcDATAMBgNVHRMBAf8EAjAAMA0GCSqGSIb3
DQEBCwUAA4IBAQAcRKvMvFThv+8zgUWrhBLeVqZOqrhqf+MikIueXOzFaUW7UG0M
n/KGsCS/IeF8Wq4PWcl0vKNznU1XndXeiC07m2N26BDlqj3pCemH42o+b9AJVS9Q
mOnhkk7KwHKTm/qwD+Ii7afqRoaem04kgcAxBGcUwqfR13vd+hXP/cONysqVkpX2
AGtIjrvFemD/OnRDwJcZU1jEvZNJTXsF0qyNh0uO/o92gG5fvDylmM4HznUZOIt7
itA1Nm1aTeCP/iKsTk3R9qDrmP+iTgB9tUlF0KgEFkDTuWzh+zN7h+bySApuB5Jo
JDJBNX+SiorHscIOHR8rc1x4XLhwhhPp1/9+
-----END CERTIFICATE-----
)";
const char* const kRequesterKeyPem = R"(-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEAvAw+WshuDB2Gmt/uP7K2d1HUgU4OKDFU3OQGVfKobW+q1SiN
F5am7mfJ4f3QeQb0oyfgKYIuu4hbdyqiPk/eJDt33nnhpkzLCGoAIMbb6SG5WqVK
wYGdbUA9AJl2lhLgTU/5hyII3jfGwGNGC2n7YKRARSyS3Utaez/JIgsaLq5AWgDj
INvSfCvUPjww1LuC2mF8+JlSf/oygNxuWe1nFNnIkwOtB8Tm5GPtK8L/VyTQoE/K
A/nHdocUgdVjG3EYsTMXaWXZSF48yLTk8lxH9kVadw/4JMAb+5silWKljgMSEQKN
c6EQkYccF5urq44XgTrO4jbN773XwKFHo7Zr0wIDAQABAoIBAAr9VC+OAxBmMVWf
vJawZQV4HMkpvJ4Qs/rswIoJUlqC6iLm6cf1H/BS1HOGl8Za57UZQXprhzuibmX6
cdzeYgcQCqNP0CYd2se1GijQNk3bkK+BdWr1njOiS25biZifpcge4mBJVudVryHT
K2bDXNN7Bd6FClgwbStCwQhiSbdskdkm9UYjHLoDGMIP+zD6E9Gg7nH6FxEbIPzR
29IqOBFiCqNlgJhujUy6aZEseXaKQdIdDQruQOKRmYbnlLuOObNg2E3C4kXjkSLI
z1cBVPqgXGLvzbUz26WEg8GjLpkSHKTrKGEDD5abOM6kgsEj5l2GMCycxQ0fEhRm
BiAlQJECgYEA6Qf+8VBv2TMibn5YZgJCsFF3iWVstbkcqmW4NdOxbeeiILkVYt3C
4CuNezrmhNrDdkPmiNundN1XZLS4m8g7qgF2lcZW3e02qZdEVSJK60TlFeKslUfo
yKBiQ6pcGxI/F8GFgUBEdsFDFCYEWQsAeffWeBwXqudQC5E+dfirHEUCgYEAzpUy
CpsOmztpuvX7PIVi+qiuDqbKJzDclvK2jyX7H01tZOoYzQrqyJu24GOw2xHa2GXY
IgLN20ywJfEh4fxAcadpYLX2P52a36Kr6HS37iQebczsO6ByNKa9zHW5ZBmYjOPj
XGXuRgR7JaFLTF4R3AEiL9GwVl+2+Ynhpc8uBTcCgYEAgs+3QFVMBBwdRvNrwg+g
ygNhW+JwjO5V9h1Vs/mazzxJGZ9sLuyXuWkZacSdpJR9RsVFAyxyqzqZFXIRc3mK
bJuXquoE112S4s6EUFoIvlsVUhzFjqMoPH8zyhI21AeBHV/IBs9B33wLoKLaq/Vu
FgmW/iOe8ZQZrfShoG2v+BUCgYBTi3LZZyvZC4YO3jvkle0Zge4ibsGCZ/hN84px
CeMtHZsIHMQ66BdbWd3zkV2MuwPOUCHAX3HxJmp2bbZONj25uQKc4fnccFiZ6Ket
MsbPwDuuHBnNY23MbUKE1XdMTC2tjNv+GhrqphVHepuBHuoKF0tEG4E87SiKcoCX
Fdp+sQKBgQCwHOjHtz3IeOq361TbIJ1MBvamu3pluOtBgECNEsIittwLqaV+NxT2
6qm9RnNFkpsY99aqvlIw7wXKqhvIaaq01F4E+dfJXEY/Fv+Y7mtYrDCKPvuwScgS
2kGiuDJZmRj1R2uF+IjWLtfaQpkh1ytLWWeMb14CSxUoGC6GCgKvUQ==
-----END RSA PRIVATE KEY-----
)";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace mdmc::pki;
  static const std::string ca_der = certificate_der(kCaPem).value();
  static const Identity requester{kRequesterCertPem, kRequesterKeyPem, {}};
  std::string_view bytes(reinterpret_cast<const char*>(data), size);

  (void)scep::parse_capabilities(bytes);
  auto ca = scep::parse_ca_certificates(bytes);
  if (ca.ok()) {
    (void)ca->pem();
    (void)scep::check_ca_fingerprint(*ca, std::string(32, '\0'));
  }
  auto rep = scep::parse_cert_rep(bytes, {ca_der});
  if (rep.ok() && rep->status == scep::PkiStatus::success) {
    auto certs = scep::decrypt_issued_certificates(rep->envelope_der, requester);
    if (certs.ok()) (void)scep::check_issued_certificate(*certs, {kRequesterKeyPem, {{{"CN", "x"}}}, kCaPem});
  }
  // The envelope parser on its own too: most mutations of a CertRep break its signature first.
  (void)scep::decrypt_issued_certificates(bytes, requester);
  return 0;
}

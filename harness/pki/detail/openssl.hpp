#pragma once
// OpenSSL plumbing shared by the pki sources: owning pointers, the error queue as text, and PEM
// and DER in and out of strings. Private to harness/pki.
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>

#include "harness/pki/pki.hpp"

namespace mdmc::pki::detail {

template <auto Free>
struct Deleter {
  template <typename T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};

void free_x509_stack(STACK_OF(X509) * stack) noexcept;  // frees the certificates too
void free_openssl_bytes(unsigned char* bytes) noexcept;

using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using X509StackPtr = std::unique_ptr<STACK_OF(X509), Deleter<free_x509_stack>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX_free>>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION_free>>;
using NamePtr = std::unique_ptr<X509_NAME, Deleter<X509_NAME_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using GeneralNamePtr = std::unique_ptr<GENERAL_NAME, Deleter<GENERAL_NAME_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES_free>>;
using OctetStringPtr = std::unique_ptr<ASN1_OCTET_STRING, Deleter<ASN1_OCTET_STRING_free>>;
using Ia5StringPtr = std::unique_ptr<ASN1_IA5STRING, Deleter<ASN1_IA5STRING_free>>;
using CmsPtr = std::unique_ptr<CMS_ContentInfo, Deleter<CMS_ContentInfo_free>>;
using Pkcs12Ptr = std::unique_ptr<PKCS12, Deleter<PKCS12_free>>;
using StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX_free>>;
using OpensslBytesPtr = std::unique_ptr<unsigned char, Deleter<free_openssl_bytes>>;

// Every entry of this thread's OpenSSL error queue, oldest first, joined by "; "
// ("error:0480006C:PEM routines::no start line (Expecting: CERTIFICATE)"), and the queue emptied.
// "no OpenSSL detail" when the queue was empty.
std::string take_openssl_errors();
// A failure that is not OpenSSL's: `message` as is. Empties the queue all the same.
base::Error fail(std::string message);
// A failure after an OpenSSL call returned an error: "what: <queue text>". Empties the queue.
base::Error fail_openssl(std::string_view what);

// A read-only memory BIO over `bytes` (which must outlive it).
Result<BioPtr> memory_source(std::string_view bytes);
// What a memory BIO holds.
std::string memory_contents(BIO* bio);

// The first certificate in `pem`; `what` names the input in the error ("CA certificate"). The
// same text may give the same certificate, shared (kept once decoded): read it, never change it.
Result<X509Ptr> read_certificate(std::string_view pem, std::string_view what);
// Every certificate in `pem`, in order; empty text gives an empty stack.
Result<X509StackPtr> read_certificates(std::string_view pem, std::string_view what);
// The first private key in `pem`. Encrypted keys are refused (never a terminal prompt).
Result<PkeyPtr> read_private_key(std::string_view pem, std::string_view what);

Result<std::string> certificate_pem(X509* cert);
Result<std::string> certificates_pem(const STACK_OF(X509) * certs);
Result<std::string> private_key_pem(EVP_PKEY* key);  // unencrypted PKCS#8
Result<std::string> certificate_der(X509* cert);
// The certificate's subject on one line, RFC 2253 ("CN=x,O=y"), UTF-8.
Result<std::string> subject_line(X509* cert);

// A certificate, its key and its intermediates, parsed and checked to belong together.
struct ParsedIdentity {
  X509Ptr cert;
  PkeyPtr key;
  X509StackPtr chain;
};
Result<ParsedIdentity> parse_identity(const Identity& identity, std::string_view what);

// A CMS SignedData over `content`, DER: binary (the bytes as they are), SHA-256, with the
// signer's certificate and chain; the content inside it, or left out (detached). Errors start
// with `what`, the caller's name ("mdm_signature").
Result<std::string> signed_data_der(const Identity& signer, std::string_view content, bool detached,
                                    std::string_view what);

}  // namespace mdmc::pki::detail

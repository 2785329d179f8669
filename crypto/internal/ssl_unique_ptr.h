// unique_ptr aliases that free OpenSSL handles with the matching function.
#ifndef CLAVIS_CRYPTO_INTERNAL_SSL_UNIQUE_PTR_H_
#define CLAVIS_CRYPTO_INTERNAL_SSL_UNIQUE_PTR_H_

#include <memory>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>  // EVP_KDF_free, EVP_KDF_CTX_free

namespace clavis::crypto::internal {

template <typename T, void (*Free)(T*)>
struct SslDeleter {
  void operator()(T* p) const { Free(p); }
};

using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, SslDeleter<EVP_PKEY, EVP_PKEY_free>>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, SslDeleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using EvpCipherCtxPtr =
    std::unique_ptr<EVP_CIPHER_CTX, SslDeleter<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>>;
using EvpCipherPtr = std::unique_ptr<EVP_CIPHER, SslDeleter<EVP_CIPHER, EVP_CIPHER_free>>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, SslDeleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using EvpMacPtr = std::unique_ptr<EVP_MAC, SslDeleter<EVP_MAC, EVP_MAC_free>>;
using EvpMacCtxPtr = std::unique_ptr<EVP_MAC_CTX, SslDeleter<EVP_MAC_CTX, EVP_MAC_CTX_free>>;
using EvpKdfPtr = std::unique_ptr<EVP_KDF, SslDeleter<EVP_KDF, EVP_KDF_free>>;
using EvpKdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, SslDeleter<EVP_KDF_CTX, EVP_KDF_CTX_free>>;

inline void FreeBioAll(BIO* b) { BIO_free_all(b); }
using BioPtr = std::unique_ptr<BIO, SslDeleter<BIO, FreeBioAll>>;

}  // namespace clavis::crypto::internal

#endif  // CLAVIS_CRYPTO_INTERNAL_SSL_UNIQUE_PTR_H_

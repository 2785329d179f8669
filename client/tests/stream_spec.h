// The stream format written a second time, straight from docs/FORMAT.md
// "Stream (v1)" and with OpenSSL's EVP API only (HKDF and AES-256-GCM),
// independent of client/src and of the crypto layer. Tests use it to check
// that the SDK follows its spec, to decrypt streams "offline" as a customer
// would, and to craft streams the SDK would never write (another version, a
// commitment that does not match the data key, chunks with wrong flags).
#ifndef CLAVIS_CLIENT_TESTS_STREAM_SPEC_H_
#define CLAVIS_CLIENT_TESTS_STREAM_SPEC_H_

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace clavis::testing {

inline std::string StreamSpecBigEndian(uint64_t v, int bytes) {
  std::string out;
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return out;
}

inline uint64_t StreamSpecReadBigEndian(absl::string_view b) {
  uint64_t v = 0;
  for (char c : b) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}

// FORMAT.md "Encryption context": u32 count, then sorted u32-prefixed pairs.
inline std::string StreamSpecContext(const std::map<std::string, std::string>& context) {
  std::string out = StreamSpecBigEndian(context.size(), 4);
  for (const auto& [k, v] : context) {
    absl::StrAppend(&out, StreamSpecBigEndian(k.size(), 4), k, StreamSpecBigEndian(v.size(), 4), v);
  }
  return out;
}

// RFC 5869 HKDF-SHA256 with OpenSSL 3's EVP_KDF.
inline std::string StreamSpecHkdf(absl::string_view ikm, absl::string_view salt,
                                  absl::string_view info, size_t size) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  char digest[] = "SHA256";
  std::string k(ikm), s(salt), i(info);
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, k.data(), k.size()),
                         OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, s.data(), s.size()),
                         OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, i.data(), i.size()),
                         OSSL_PARAM_construct_end()};
  std::string out(size, '\0');
  const bool ok =
      EVP_KDF_derive(ctx, reinterpret_cast<unsigned char*>(out.data()), size, params) == 1;
  EVP_KDF_CTX_free(ctx);
  EVP_KDF_free(kdf);
  OPENSSL_cleanse(k.data(), k.size());
  return ok ? out : std::string();
}

// AES-256-GCM with a 12-byte nonce: ciphertext || 16-byte tag.
inline std::string StreamSpecGcmSeal(absl::string_view key, absl::string_view nonce,
                                     absl::string_view plaintext, absl::string_view aad) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  auto u = [](absl::string_view b) { return reinterpret_cast<const unsigned char*>(b.data()); };
  std::string out(plaintext.size() + 16, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  int len = 0, total = 0;
  EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr);
  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()), nullptr);
  EVP_EncryptInit_ex(ctx, nullptr, nullptr, u(key), u(nonce));
  EVP_EncryptUpdate(ctx, nullptr, &len, u(aad), static_cast<int>(aad.size()));
  EVP_EncryptUpdate(ctx, o, &len, u(plaintext), static_cast<int>(plaintext.size()));
  total = len;
  EVP_EncryptFinal_ex(ctx, o + total, &len);
  total += len;
  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, o + total);
  EVP_CIPHER_CTX_free(ctx);
  return out;
}

inline std::optional<std::string> StreamSpecGcmOpen(absl::string_view key, absl::string_view nonce,
                                                    absl::string_view sealed,
                                                    absl::string_view aad) {
  if (sealed.size() < 16) return std::nullopt;
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  auto u = [](absl::string_view b) { return reinterpret_cast<const unsigned char*>(b.data()); };
  const absl::string_view ciphertext = sealed.substr(0, sealed.size() - 16);
  std::string tag(sealed.substr(sealed.size() - 16));
  std::string out(ciphertext.size(), '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  int len = 0;
  EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr);
  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()), nullptr);
  EVP_DecryptInit_ex(ctx, nullptr, nullptr, u(key), u(nonce));
  EVP_DecryptUpdate(ctx, nullptr, &len, u(aad), static_cast<int>(aad.size()));
  EVP_DecryptUpdate(ctx, o, &len, u(ciphertext), static_cast<int>(ciphertext.size()));
  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag.data());
  const bool ok = EVP_DecryptFinal_ex(ctx, o + len, &len) == 1;
  EVP_CIPHER_CTX_free(ctx);
  if (!ok) return std::nullopt;
  return out;
}

// The fields of a stream header, as FORMAT.md lists them.
struct SpecStream {
  std::string key = "tenants/acme/keys/crm";
  std::string segment = "acme/backups/2026-11";
  std::string data_key_blob = "blob";
  uint32_t chunk_size = 4096;
  std::string salt = std::string(32, '\x5a');
  std::string nonce_prefix = "\x01\x02\x03\x04\x05\x06\x07";
  uint8_t version = 1;
  uint8_t algorithm = 1;
  // If set, written instead of the commitment derived from the data key.
  std::optional<std::string> commitment_override;
};

// info = "clavis stream v1" || u8 algorithm || u16 key || u16 segment || u32
// chunk size; OKM = HKDF-SHA256(DK, salt, info, 64) = AES key || commitment.
inline std::string StreamSpecOkm(absl::string_view data_key, const SpecStream& s) {
  const std::string info = absl::StrCat(
      "clavis stream v1", std::string(1, static_cast<char>(s.algorithm)),
      StreamSpecBigEndian(s.key.size(), 2), s.key, StreamSpecBigEndian(s.segment.size(), 2),
      s.segment, StreamSpecBigEndian(s.chunk_size, 4));
  return StreamSpecHkdf(data_key, s.salt, info, 64);
}

inline std::string StreamSpecHeader(absl::string_view data_key, const SpecStream& s) {
  const std::string okm = StreamSpecOkm(data_key, s);
  return absl::StrCat("CLST", std::string(1, static_cast<char>(s.version)),
                      std::string(1, static_cast<char>(s.algorithm)),
                      StreamSpecBigEndian(s.key.size(), 2), s.key,
                      StreamSpecBigEndian(s.segment.size(), 2), s.segment,
                      StreamSpecBigEndian(s.data_key_blob.size(), 4), s.data_key_blob,
                      StreamSpecBigEndian(s.chunk_size, 4), s.salt, s.nonce_prefix,
                      s.commitment_override.value_or(okm.substr(32, 32)));
}

inline std::string StreamSpecNonce(absl::string_view prefix, uint32_t index, bool last) {
  return absl::StrCat(prefix, StreamSpecBigEndian(index, 4), std::string(1, last ? '\x01' : '\0'));
}

// One chunk as FORMAT.md defines it, with any index and flag (to build
// streams with reordered or mislabelled chunks).
inline std::string StreamSpecChunk(absl::string_view data_key, const SpecStream& s,
                                   absl::string_view plaintext, uint32_t index, bool last,
                                   const std::map<std::string, std::string>& context) {
  const std::string okm = StreamSpecOkm(data_key, s);
  return StreamSpecGcmSeal(okm.substr(0, 32), StreamSpecNonce(s.nonce_prefix, index, last),
                           plaintext,
                           absl::StrCat(StreamSpecHeader(data_key, s), StreamSpecContext(context)));
}

// A whole stream: header, then the plaintext cut into chunk_size pieces, the
// last piece (0..chunk_size bytes) flagged as last.
inline std::string StreamSpecSeal(absl::string_view data_key, const SpecStream& s,
                                  absl::string_view plaintext,
                                  const std::map<std::string, std::string>& context) {
  std::string out = StreamSpecHeader(data_key, s);
  uint32_t index = 0;
  while (plaintext.size() > s.chunk_size) {
    out += StreamSpecChunk(data_key, s, plaintext.substr(0, s.chunk_size), index++, false, context);
    plaintext.remove_prefix(s.chunk_size);
  }
  return out + StreamSpecChunk(data_key, s, plaintext, index, true, context);
}

// The offline recipe of FORMAT.md for a whole stream in memory: split the
// header by its length prefixes, derive, compare the commitment, cut the rest
// into chunks of chunk_size + 16 bytes (the remainder, if any, is the last;
// if none, the last full one is), open each with its nonce.
inline absl::StatusOr<std::string> StreamSpecOpen(
    absl::string_view data_key, absl::string_view stream,
    const std::map<std::string, std::string>& context) {
  auto fail = [](absl::string_view why) { return absl::InvalidArgumentError(why); };
  if (stream.size() < 6 || stream.substr(0, 4) != "CLST" || stream[4] != 1 || stream[5] != 1) {
    return fail("not a v1 stream");
  }
  SpecStream s;
  size_t at = 6;
  auto field = [&](int prefix) {
    const size_t n = StreamSpecReadBigEndian(stream.substr(at, prefix));
    std::string value(stream.substr(at + prefix, n));
    at += prefix + n;
    return value;
  };
  s.key = field(2);
  s.segment = field(2);
  s.data_key_blob = field(4);
  s.chunk_size = static_cast<uint32_t>(StreamSpecReadBigEndian(stream.substr(at, 4)));
  at += 4;
  s.salt = std::string(stream.substr(at, 32));
  s.nonce_prefix = std::string(stream.substr(at + 32, 7));
  const absl::string_view commitment = stream.substr(at + 39, 32);
  at += 71;
  if (stream.size() < at) return fail("truncated header");
  const absl::string_view header = stream.substr(0, at);
  const std::string okm = StreamSpecOkm(data_key, s);
  if (CRYPTO_memcmp(okm.data() + 32, commitment.data(), 32) != 0) {
    return fail("commitment mismatch");
  }
  const std::string aad = absl::StrCat(header, StreamSpecContext(context));
  absl::string_view body = stream.substr(at);
  const size_t full = size_t{s.chunk_size} + 16;
  if (body.empty() || (body.size() % full != 0 && body.size() % full < 16)) {
    return fail("truncated");
  }
  std::string plaintext;
  for (uint32_t i = 0; !body.empty(); ++i) {
    const size_t n = std::min(full, body.size());
    const bool last = n == body.size();
    std::optional<std::string> chunk = StreamSpecGcmOpen(
        okm.substr(0, 32), StreamSpecNonce(s.nonce_prefix, i, last), body.substr(0, n), aad);
    if (!chunk) return fail(absl::StrCat("chunk ", i, " failed"));
    plaintext += *chunk;
    body.remove_prefix(n);
  }
  return plaintext;
}

}  // namespace clavis::testing

#endif  // CLAVIS_CLIENT_TESTS_STREAM_SPEC_H_

// FieldEncryptor: field-level encryption of JSON documents, e.g. customer
// records where the email, phone and card number are encrypted and the rest
// stays readable (and queryable).
//
//   auto fields = clavis::FieldEncryptor::New(records, {"/email", "/phone", "/card/number"});
//   std::string stored = *(*fields)->EncryptFields(
//       "acme/customers", R"({"id": 42, "email": "ada@example.com", "phone": "+44 20"})",
//       {{"table", "customers"}}, /*associated_data=*/"customer 42");
//   // {"id":42,"email":"clavis:v1:Q0xTUgIB...","phone":"clavis:v1:Q0xTUgIB..."}
//   std::string plain = *(*fields)->DecryptFields(stored, {{"table", "customers"}}, "customer 42");
//
// Fields are named by JSON Pointer (RFC 6901). Each present field's value —
// any JSON value: string, number, object, ... — is serialized, sealed as one
// record (clavis/record_encryptor.h) and replaced by the string
// "clavis:v1:" + base64(sealed record) (docs/FORMAT.md "Encrypted JSON field").
// Each field's record is bound to its pointer, so a ciphertext moved to
// another field fails to decrypt; bind the record's identity (e.g. its
// primary key) as associated data so it cannot be moved to another record
// either. Missing fields are skipped, on both sides. Other fields, their
// order and their values are left as they are (re-serialized compactly).
//
// Errors (InvalidArgument, never quoting document content, which may be
// personal data): "document is not valid JSON (byte N)", "field /x is
// already encrypted" (EncryptFields), "field /x is not encrypted"
// (DecryptFields: a listed field holding a plain value is refused, since it
// could have been put there by whoever changed the stored document), and the
// RecordEncryptor's errors prefixed with the field's pointer.
//
// Thread safety: immutable after New; methods may be called concurrently.
#ifndef CLAVIS_CLIENT_INCLUDE_CLAVIS_FIELD_ENCRYPTOR_H_
#define CLAVIS_CLIENT_INCLUDE_CLAVIS_FIELD_ENCRYPTOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "clavis/encryption_context.h"
#include "clavis/record_encryptor.h"

namespace clavis {

class FieldEncryptor {
 public:
  // The prefix of an encrypted field's string value.
  static constexpr absl::string_view kEncryptedPrefix = "clavis:v1:";
  // Largest document accepted (64 MiB).
  static constexpr size_t kMaxDocumentSize = size_t{64} << 20;

  // InvalidArgument for a null encryptor, no fields, more than 256 fields,
  // or a malformed or duplicate pointer ("" — the whole document — is not a
  // field).
  static absl::StatusOr<std::unique_ptr<FieldEncryptor>> New(
      std::shared_ptr<RecordEncryptor> records, std::vector<std::string> field_pointers);

  absl::StatusOr<std::string> EncryptFields(absl::string_view segment, absl::string_view json,
                                            const EncryptionContext& context,
                                            absl::string_view associated_data = {}) const;

  // Decrypts every listed field present, with one DecryptMany call (so the
  // data keys a document needs are fetched together).
  absl::StatusOr<std::string> DecryptFields(absl::string_view json,
                                            const EncryptionContext& context,
                                            absl::string_view associated_data = {}) const;

 private:
  FieldEncryptor(std::shared_ptr<RecordEncryptor> records, std::vector<std::string> pointers);
  const std::shared_ptr<RecordEncryptor> records_;
  const std::vector<std::string> pointers_;
};

}  // namespace clavis

#endif  // CLAVIS_CLIENT_INCLUDE_CLAVIS_FIELD_ENCRYPTOR_H_

#include "clavis/field_encryptor.h"

#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "crypto/byte_io.h"
#include "crypto/encoding.h"
#include "nlohmann/json.hpp"

namespace clavis {
namespace {

// Keeps the document's member order.
using Json = nlohmann::ordered_json;

constexpr size_t kMaxFields = 256;

// The record's associated data: u32 pointer length, pointer, then the
// caller's associated data (docs/FORMAT.md "Encrypted JSON field").
std::string FieldAssociatedData(absl::string_view pointer, absl::string_view associated_data) {
  std::string out;
  crypto::ByteWriter w(&out);
  w.U32Prefixed(pointer);
  w.Bytes(associated_data);
  return out;
}

absl::StatusOr<Json> ParseDocument(absl::string_view json) {
  if (json.size() > FieldEncryptor::kMaxDocumentSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "document of ", json.size(), " bytes is larger than ", FieldEncryptor::kMaxDocumentSize));
  }
  try {
    return Json::parse(json.begin(), json.end());
  } catch (const Json::parse_error& e) {
    // e.what() quotes the input; the byte offset says where without it.
    return absl::InvalidArgumentError(
        absl::StrCat("document is not valid JSON (byte ", e.byte, ")"));
  } catch (const std::exception&) {
    return absl::InvalidArgumentError("document is not valid JSON");
  }
}

// The value at `pointer`, or null if absent (a missing member or index, or
// a parent that is not a container).
Json* Find(Json& doc, const Json::json_pointer& pointer) {
  try {
    if (!doc.contains(pointer)) return nullptr;
    return &doc.at(pointer);
  } catch (const std::exception&) {
    return nullptr;
  }
}

absl::Status FieldError(absl::string_view pointer, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat("field ", pointer, ": ", status.message()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<FieldEncryptor>> FieldEncryptor::New(
    std::shared_ptr<RecordEncryptor> records, std::vector<std::string> field_pointers) {
  if (records == nullptr) return absl::InvalidArgumentError("record encryptor is null");
  if (field_pointers.empty()) return absl::InvalidArgumentError("no field to encrypt");
  if (field_pointers.size() > kMaxFields) {
    return absl::InvalidArgumentError(absl::StrCat("at most ", kMaxFields, " fields"));
  }
  absl::flat_hash_set<std::string> seen;
  for (const std::string& p : field_pointers) {
    if (p.empty()) {
      return absl::InvalidArgumentError(
          "field pointer \"\" names the whole document; encrypt it with RecordEncryptor");
    }
    try {
      Json::json_pointer parsed(p);
      (void)parsed;
    } catch (const std::exception&) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", p, "\" is not a JSON Pointer (RFC 6901), e.g. \"/email\""));
    }
    if (!seen.insert(p).second) {
      return absl::InvalidArgumentError(absl::StrCat("field ", p, " is listed twice"));
    }
  }
  return std::unique_ptr<FieldEncryptor>(
      new FieldEncryptor(std::move(records), std::move(field_pointers)));
}

FieldEncryptor::FieldEncryptor(std::shared_ptr<RecordEncryptor> records,
                               std::vector<std::string> pointers)
    : records_(std::move(records)), pointers_(std::move(pointers)) {}

absl::StatusOr<std::string> FieldEncryptor::EncryptFields(absl::string_view segment,
                                                          absl::string_view json,
                                                          const EncryptionContext& context,
                                                          absl::string_view associated_data) const {
  absl::StatusOr<Json> doc = ParseDocument(json);
  if (!doc.ok()) return doc.status();
  try {
    for (const std::string& p : pointers_) {
      Json* value = Find(*doc, Json::json_pointer(p));
      if (value == nullptr) continue;
      if (value->is_string() &&
          absl::StartsWith(value->get_ref<const std::string&>(), kEncryptedPrefix)) {
        return absl::InvalidArgumentError(absl::StrCat("field ", p, " is already encrypted"));
      }
      absl::StatusOr<std::string> sealed = records_->Encrypt(
          segment, value->dump(), context, FieldAssociatedData(p, associated_data));
      if (!sealed.ok()) return FieldError(p, sealed.status());
      *value = absl::StrCat(kEncryptedPrefix, crypto::Base64Encode(*sealed));
    }
    return doc->dump();
  } catch (const std::exception&) {
    // nlohmann reports e.g. invalid UTF-8 in dump() by exception.
    return absl::InvalidArgumentError("document cannot be re-serialized as JSON (invalid UTF-8?)");
  }
}

absl::StatusOr<std::string> FieldEncryptor::DecryptFields(absl::string_view json,
                                                          const EncryptionContext& context,
                                                          absl::string_view associated_data) const {
  absl::StatusOr<Json> doc = ParseDocument(json);
  if (!doc.ok()) return doc.status();
  try {
    std::vector<Json*> values;
    std::vector<std::string> pointers;
    std::vector<std::string> sealed;
    std::vector<std::string> aads;
    for (const std::string& p : pointers_) {
      Json* value = Find(*doc, Json::json_pointer(p));
      if (value == nullptr) continue;
      if (!value->is_string() ||
          !absl::StartsWith(value->get_ref<const std::string&>(), kEncryptedPrefix)) {
        return absl::InvalidArgumentError(absl::StrCat("field ", p, " is not encrypted"));
      }
      absl::StatusOr<std::string> bytes = crypto::Base64Decode(
          absl::string_view(value->get_ref<const std::string&>()).substr(kEncryptedPrefix.size()));
      if (!bytes.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("field ", p, " is not valid base64 after \"", kEncryptedPrefix, "\""));
      }
      values.push_back(value);
      pointers.push_back(p);
      sealed.push_back(std::move(*bytes));
      aads.push_back(FieldAssociatedData(p, associated_data));
    }
    std::vector<RecordToDecrypt> batch;
    batch.reserve(sealed.size());
    for (size_t i = 0; i < sealed.size(); ++i) {
      batch.push_back(RecordToDecrypt{sealed[i], context, aads[i]});
    }
    std::vector<absl::StatusOr<std::string>> plain = records_->DecryptMany(batch);
    for (size_t i = 0; i < plain.size(); ++i) {
      if (!plain[i].ok()) return FieldError(pointers[i], plain[i].status());
      absl::StatusOr<Json> field = ParseDocument(*plain[i]);
      if (!field.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("field ", pointers[i], " decrypted to something that is not JSON"));
      }
      *values[i] = std::move(*field);
    }
    return doc->dump();
  } catch (const std::exception&) {
    return absl::InvalidArgumentError("document cannot be re-serialized as JSON (invalid UTF-8?)");
  }
}

}  // namespace clavis

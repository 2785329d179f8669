#include "tools/clavisctl/cli_checks.h"

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tools/clavisctl/args.h"

namespace clavis::clavisctl {

// The validator descriptions are left empty: the option's type_name
// (DURATION, TIME, KEY=VALUE) already tells the syntax in --help.

CLI::Validator DurationCheck() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        absl::StatusOr<absl::Duration> d = ParseDuration(text);
        return d.ok() ? std::string() : std::string(d.status().message());
      },
      "");
}

CLI::Validator TimeoutCheck() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        absl::StatusOr<absl::Duration> d = ParseDuration(text);
        if (!d.ok()) return std::string(d.status().message());
        if (*d <= absl::ZeroDuration()) return "the timeout must be longer than 0s";
        if (*d > absl::Hours(24)) return "the timeout must be at most 1d";
        return std::string();
      },
      "");
}

CLI::Validator CountCheck() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        int count = 0;
        if (absl::SimpleAtoi(text, &count) && count >= 1) return std::string();
        // CLI11 prefixes the message with the option's name.
        return absl::StrCat("must be a whole number of at least 1, not \"", absl::CHexEscape(text),
                            "\"");
      },
      "");
}

CLI::Validator TimeCheck() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        absl::StatusOr<absl::Time> t = ParseTime(text);
        return t.ok() ? std::string() : std::string(t.status().message());
      },
      "");
}

CLI::Validator KeyValueCheck() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        // CLI11 already prefixes the message with the option's name.
        auto kv = ParseKeyValue(text, "");
        return kv.ok() ? std::string() : std::string(kv.status().message());
      },
      "");
}

}  // namespace clavis::clavisctl

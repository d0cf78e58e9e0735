#ifndef FLEETPLAN_PLANNER_COMMON_NAMES_H_
#define FLEETPLAN_PLANNER_COMMON_NAMES_H_

// Names <-> enum values: one vocabulary per enum (dtype, KV-cache dtype, engine, optimizer,
// strategy, spread, risk ...), defined once beside its enum and used by every reader of words —
// the config.json parser, the CLI's flags, the server's string fields, the calibration reader —
// so that the CLI and the server accept exactly the same words and refuse the rest with the same
// message. Each entry has one canonical name (what we print) and optional aliases (what we also
// accept, e.g. vLLM's and PyTorch's spellings).
//
// Immutable after construction; thread-safe to read.

#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"

namespace fleetplan {

template <typename E>
class Vocabulary {
 public:
  struct Entry {
    E value;
    const char* name;                    // canonical
    std::vector<const char*> aliases{};  // also accepted
  };

  Vocabulary(const char* what, std::initializer_list<Entry> entries)
      : what_(what), entries_(entries) {}

  // The canonical name of `value` ("?" for a value outside the table).
  const char* Name(E value) const {
    for (const Entry& e : entries_) {
      if (e.value == value) return e.name;
    }
    return "?";
  }

  // Parses `text` (a canonical name or an alias). INVALID_ARGUMENT names the field, the value and
  // the accepted words: `--dtype="half16" must be one of bfloat16, float16, float32`.
  absl::StatusOr<E> Parse(absl::string_view field, absl::string_view text) const {
    for (const Entry& e : entries_) {
      if (text == e.name) return e.value;
      for (const char* alias : e.aliases) {
        if (text == alias) return e.value;
      }
    }
    return absl::InvalidArgumentError(absl::StrCat(field, "=\"", Truncated(text), "\" is not a ",
                                                   what_, ": use one of ", Choices()));
  }

  bool Contains(absl::string_view text) const { return Parse("", text).ok(); }

  // "a, b, c": the canonical names, for help texts and errors.
  std::string Choices() const {
    std::vector<const char*> names;
    names.reserve(entries_.size());
    for (const Entry& e : entries_) names.push_back(e.name);
    return absl::StrJoin(names, ", ");
  }

  const std::vector<Entry>& entries() const { return entries_; }

 private:
  // Error messages stay bounded whatever a caller sends.
  static std::string Truncated(absl::string_view text) {
    constexpr size_t kShown = 64;
    if (text.size() <= kShown) return std::string(text);
    return absl::StrCat(text.substr(0, kShown), "...");
  }

  const char* what_;
  std::vector<Entry> entries_;
};

}  // namespace fleetplan

#endif  // FLEETPLAN_PLANNER_COMMON_NAMES_H_

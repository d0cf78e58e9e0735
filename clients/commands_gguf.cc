// `fleetplan gguf FILE`: what a llama.cpp model file holds -- its exact weight bytes by ggml
// type, parameters, and the KV cache per token and at a context (planner/estimator/gguf.h). Reads
// only the header, however large the file.
//
//   fleetplan gguf model-Q4_K_M.gguf [--context=8192] [--cache-type=q8_0] [--output=json]

#include <fstream>
#include <ostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "clients/cli.h"
#include "nlohmann/json.hpp"
#include "planner/common/units.h"
#include "planner/estimator/gguf.h"

namespace fleetplan::cli {
namespace {

// The file's first `limit` bytes (a header is megabytes, the file gigabytes).
absl::StatusOr<std::string> Prefix(const std::string& path, int64_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("GGUF file \"", path, "\" cannot be read"));
  std::string out(static_cast<size_t>(limit), '\0');
  in.read(out.data(), limit);
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

int RunGguf(const Invocation& inv) {
  if (inv.positional.size() != 1) {
    inv.err << "fleetplan gguf: give one FILE.gguf (see --help)\n";
    return kExitUsage;
  }
  const std::string& path = inv.positional[0];
  absl::StatusOr<estimator::GgufFile> file = ReadGgufHeaderFile(path);
  if (!file.ok() && file.status().code() == absl::StatusCode::kNotFound) {
    return ReportError(inv.err, "gguf", file.status());
  }
  if (!file.ok()) {
    inv.err << "fleetplan gguf: " << path << ": " << file.status().message() << "\n";
    return kExitUsage;
  }
  const int64_t context = inv.flags.GetInt("context");
  if (context < 0) {
    inv.err << "fleetplan gguf: --context=" << context << " must be >= 0\n";
    return kExitUsage;
  }
  absl::StatusOr<estimator::GgufKv> kv =
      estimator::GgufKvCache(*file, inv.flags.GetString("cache-type"));
  const int64_t ctx = context > 0 ? context : (kv.ok() ? kv->context_length : 0);
  auto name = [&](const char* key) {
    auto it = file->metadata.find(key);
    return it == file->metadata.end() ? std::string() : it->second;
  };
  if (inv.output == OutputFormat::kJson) {
    nlohmann::json out{{"file", path},
                       {"version", file->version},
                       {"architecture", name("general.architecture")},
                       {"name", name("general.name")},
                       {"tensors", file->tensors.size()},
                       {"params", file->parameters},
                       {"weights_bytes", std::to_string(file->weights_bytes)},
                       {"header_bytes", std::to_string(file->header_bytes)}};
    for (const auto& [type, bytes] : file->bytes_by_type) {
      out["weights_bytes_by_type"][type] = std::to_string(bytes);
    }
    if (kv.ok()) {
      out["kv_cache"] = {{"cache_type", inv.flags.GetString("cache-type")},
                         {"layers", kv->layers},
                         {"bytes_per_token", std::to_string(kv->bytes_per_token)},
                         {"context", ctx},
                         {"bytes", std::to_string(kv->bytes_per_token * ctx)}};
    } else {
      out["kv_cache"] = {{"error", std::string(kv.status().message())}};
    }
    inv.out << out.dump(2) << "\n";
    return kExitOk;
  }
  inv.out << absl::StrFormat("%s: GGUF v%d, %s \"%s\", %d tensors, %d parameters\n", path,
                             file->version, name("general.architecture"), name("general.name"),
                             file->tensors.size(), file->parameters);
  inv.out << absl::StrFormat("weights: %.3f GiB (%d bytes)\n", BytesToGiB(file->weights_bytes),
                             file->weights_bytes);
  for (const auto& [type, bytes] : file->bytes_by_type) {
    inv.out << absl::StrFormat("  %-8s %10.3f GiB\n", type, BytesToGiB(bytes));
  }
  if (kv.ok()) {
    inv.out << absl::StrFormat(
        "KV cache (%s): %d bytes per token over %d layers; %.3f GiB at %d "
        "tokens%s\n",
        inv.flags.GetString("cache-type"), kv->bytes_per_token, kv->layers,
        BytesToGiB(kv->bytes_per_token * ctx), ctx,
        kv->sliding_window > 0 ? absl::StrCat(" (sliding window ", kv->sliding_window,
                                              " declared: llama.cpp keeps fewer cells there)")
                               : "");
  } else {
    inv.out << "KV cache: " << kv.status().message() << "\n";
  }
  inv.out << "not included: llama.cpp's compute buffer (sized by reserving the graph at n_ubatch; "
             "no closed form) and the CUDA context\n";
  return kExitOk;
}

}  // namespace

absl::StatusOr<estimator::GgufFile> ReadGgufHeaderFile(const std::string& path) {
  absl::StatusOr<estimator::GgufFile> file;
  // Most headers fit 16 MiB; large vocabularies need more. Read more only when the header says so.
  for (int64_t limit : {int64_t{16} << 20, int64_t{256} << 20, int64_t{2} << 30}) {
    absl::StatusOr<std::string> bytes = Prefix(path, limit);
    if (!bytes.ok()) return bytes.status();
    file = estimator::ParseGgufHeader(*bytes);
    if (file.ok() || file.status().code() != absl::StatusCode::kOutOfRange ||
        static_cast<int64_t>(bytes->size()) < limit) {
      break;
    }
  }
  return file;
}

std::vector<Command> GgufCommands() {
  return {Command{.name = "gguf",
                  .summary = "weights by ggml type and KV cache per token of a GGUF file (offline)",
                  .make_flags =
                      [] {
                        FlagSet f("gguf", "FILE.gguf [--context=N] [--cache-type=f16]");
                        AddOutputFlag(f);
                        f.Int("context", 0, "tokens for the KV total (0: the model's context)");
                        f.String(
                            "cache-type", "f16",
                            "llama.cpp -ctk/-ctv: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 iq4_nl");
                        return f;
                      },
                  .run = RunGguf}};
}

}  // namespace fleetplan::cli

#include "clients/vllm_log.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "planner/common/status_macros.h"

namespace fleetplan::cli {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr int64_t kMaxLineBytes = 1 << 20;

std::string Clean(absl::string_view line) {
  std::string out;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '\x1b' && i + 1 < line.size() && line[i + 1] == '[') {
      i += 2;
      while (i < line.size() && !(line[i] >= 0x40 && line[i] <= 0x7e)) ++i;
      continue;
    }
    if (line[i] != '\r') out.push_back(line[i]);
  }
  return out;
}

// The number right after `marker` in `line` (spaces, '(' and '=' skipped), as text.
std::optional<std::string> NumberAfter(const std::string& line, absl::string_view marker) {
  const size_t at = line.find(marker.data(), 0, marker.size());
  if (at == std::string::npos) return std::nullopt;
  size_t i = at + marker.size();
  while (i < line.size() && (line[i] == ' ' || line[i] == '(' || line[i] == '=')) ++i;
  size_t j = i;
  while (j < line.size() && (absl::ascii_isdigit(static_cast<unsigned char>(line[j])) ||
                             line[j] == '.' || line[j] == ',' || (j == i && line[j] == '-'))) {
    ++j;
  }
  std::string number = line.substr(i, j - i);
  number.erase(std::remove(number.begin(), number.end(), ','), number.end());
  return number;
}

class Reader {
 public:
  Reader(const std::string& source, VllmLog& log) : source_(source), log_(log) {}

  absl::Status Line(const std::string& line, int64_t no) {
    line_ = &line;
    no_ = no;
    if (line.size() > static_cast<size_t>(kMaxLineBytes)) return Bad("line longer than 1 MiB");
    Version(line);
    if (absl::StrContains(line, "with config:")) RETURN_IF_ERROR(ConfigLine(line));
    if (absl::StrContains(line, "non-default args:")) RETURN_IF_ERROR(Args(line));
    // Weights.
    for (const char* m : {"Loading model weights took", "Model loading took"}) {
      RETURN_IF_ERROR(GiB(m, "weights_bytes"));
    }
    // V0 0.6 key=value results.
    if (absl::StrContains(line, "Memory profiling results:")) {
      RETURN_IF_ERROR(GiB("total_gpu_memory=", "", &log_.gpu_total_bytes));
      RETURN_IF_ERROR(GiB("peak_torch_memory=", "peak_torch_bytes"));
      RETURN_IF_ERROR(GiB("non_torch_memory=", "non_torch_bytes"));
      RETURN_IF_ERROR(GiB("kv_cache_size=", "available_kv_cache_bytes"));
      RETURN_IF_ERROR(Fraction("gpu_memory_utilization=", log_.gpu_memory_utilization));
    }
    // V0 0.7 - V1 0.9 sentences.
    RETURN_IF_ERROR(GiB("total_gpu_memory (", "", &log_.gpu_total_bytes));
    if (absl::StrContains(line, "x gpu_memory_utilization (")) {
      RETURN_IF_ERROR(Fraction("x gpu_memory_utilization (", log_.gpu_memory_utilization));
    }
    RETURN_IF_ERROR(GiB("model weights take", "weights_bytes"));
    RETURN_IF_ERROR(GiB("non_torch_memory takes", "non_torch_bytes"));
    RETURN_IF_ERROR(GiB("PyTorch activation peak memory takes", "activation_peak_bytes"));
    RETURN_IF_ERROR(
        GiB("the rest of the memory reserved for KV Cache is", "available_kv_cache_bytes"));
    // V1 0.10+.
    if (absl::StrContains(line, "Requested memory:")) {
      RETURN_IF_ERROR(Fraction("Requested memory:", log_.gpu_memory_utilization));
      RETURN_IF_ERROR(GiB("(util),", "requested_bytes"));
    }
    RETURN_IF_ERROR(GiB("Total non KV cache memory:", "non_kv_bytes"));
    RETURN_IF_ERROR(GiB("torch peak memory increase:", "activation_peak_bytes"));
    RETURN_IF_ERROR(GiB("non-torch forward increase memory:", "non_torch_bytes"));
    RETURN_IF_ERROR(GiB("weights memory:", "weights_bytes"));
    RETURN_IF_ERROR(GiB("Available KV cache memory:", "available_kv_cache_bytes"));
    // Capacity.
    for (const char* m : {"# GPU blocks:", "# CUDA blocks:", "# cuda blocks:"}) {
      RETURN_IF_ERROR(Count(m, "num_gpu_blocks"));
    }
    RETURN_IF_ERROR(Count("GPU KV cache size:", "kv_cache_tokens"));
    if (absl::StrContains(line, "Maximum concurrency for")) {
      auto n = NumberAfter(line, "Maximum concurrency for");
      int64_t len = 0;
      if (!n || !absl::SimpleAtoi(*n, &len) || len <= 0) return Bad("no context after 'for'");
      if (!log_.max_model_len) log_.max_model_len = len;
    }
    if (absl::StrContains(line, "Graph capturing finished") && absl::StrContains(line, "took")) {
      RETURN_IF_ERROR(GiB("took", "cuda_graph_bytes"));
    }
    for (const char* f :
         {"No available memory for the cache blocks",
          "larger than the maximum number of tokens that can be stored in KV cache",
          "which is larger than the available KV cache memory", "CUDA out of memory"}) {
      if (absl::StrContains(line, f) && !log_.failed) {
        log_.failed = true;
        log_.failure = std::string(absl::StripAsciiWhitespace(line)).substr(0, 300);
      }
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Bad(absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": line ", no_, ": ", what, ": \"", line_->substr(0, 160), "\""));
  }

  void Version(const std::string& line) {
    if (!log_.version.empty()) return;
    std::optional<std::string> v;
    if (absl::StrContains(line, "vLLM API server version")) {
      const size_t at = line.find("vLLM API server version") + 23;
      v = std::string(absl::StripAsciiWhitespace(line.substr(at)));
    }
    for (const char* m : {"Initializing a V1 LLM engine (v", "Initializing a V0 LLM engine (v",
                          "Initializing an LLM engine (v"}) {
      const size_t at = line.find(m);
      if (at == std::string::npos) continue;
      const size_t start = at + std::string(m).size();
      v = line.substr(start, line.find(')', start) - start);
      log_.generation = absl::StrContains(m, "V1") ? "V1" : "V0";
    }
    if (v && !v->empty() && v->size() < 40 &&
        absl::ascii_isdigit(static_cast<unsigned char>((*v)[0]))) {
      log_.version = *v;
    }
  }

  absl::Status ConfigLine(const std::string& line) {
    const std::string config = line.substr(line.find("with config:"));
    auto value = [&](const std::string& key) -> std::optional<std::string> {
      size_t at = 0;
      while ((at = config.find(key + "=", at)) != std::string::npos) {
        if (at == 0 || config[at - 1] == ' ' || config[at - 1] == ',') break;
        at += key.size();
      }
      if (at == std::string::npos) return std::nullopt;
      const size_t start = at + key.size() + 1;
      const size_t end = config.find_first_of(", }", start);
      std::string v =
          config.substr(start, end == std::string::npos ? std::string::npos : end - start);
      v = std::string(
          absl::StripPrefix(absl::StripSuffix(absl::StripPrefix(v, "'"), "'"), "torch."));
      return v;
    };
    for (const char* key : {"dtype", "quantization", "kv_cache_dtype"}) {
      if (auto v = value(key)) log_.config[key] = *v;
    }
    auto integer = [&](const char* key, std::optional<int64_t>& out) -> absl::Status {
      auto v = value(key);
      if (!v) return absl::OkStatus();
      int64_t n = 0;
      if (!absl::SimpleAtoi(*v, &n) || n <= 0)
        return Bad(absl::StrCat(key, "=", *v, " is not a count"));
      if (!out) out = n;
      return absl::OkStatus();
    };
    RETURN_IF_ERROR(integer("tensor_parallel_size", log_.tp));
    RETURN_IF_ERROR(integer("pipeline_parallel_size", log_.pp));
    RETURN_IF_ERROR(integer("max_seq_len", log_.max_model_len));
    if (auto v = value("enforce_eager"); v && !log_.enforce_eager)
      log_.enforce_eager = *v == "True";
    return absl::OkStatus();
  }

  // "non-default args: {'model': '...', 'max_model_len': 8192, 'gpu_memory_utilization': 0.95}"
  absl::Status Args(const std::string& line) {
    const std::string args = line.substr(line.find("non-default args:"));
    auto value = [&](const std::string& key) -> std::optional<std::string> {
      const size_t at = args.find("'" + key + "': ");
      if (at == std::string::npos) return std::nullopt;
      const size_t start = at + key.size() + 4;
      const size_t end = args.find_first_of(",}", start);
      return std::string(absl::StripAsciiWhitespace(
          args.substr(start, end == std::string::npos ? std::string::npos : end - start)));
    };
    auto integer = [&](const char* key, std::optional<int64_t>& out) -> absl::Status {
      auto v = value(key);
      if (!v) return absl::OkStatus();
      int64_t n = 0;
      if (!absl::SimpleAtoi(*v, &n) || n <= 0)
        return Bad(absl::StrCat(key, ": ", *v, " is not a count"));
      out = n;
      return absl::OkStatus();
    };
    RETURN_IF_ERROR(integer("tensor_parallel_size", log_.tp));
    RETURN_IF_ERROR(integer("pipeline_parallel_size", log_.pp));
    RETURN_IF_ERROR(integer("max_model_len", log_.max_model_len));
    RETURN_IF_ERROR(integer("max_num_seqs", log_.max_num_seqs));
    RETURN_IF_ERROR(integer("max_num_batched_tokens", log_.max_num_batched_tokens));
    RETURN_IF_ERROR(integer("block_size", log_.block_size));
    if (auto v = value("gpu_memory_utilization")) {
      double u = 0;
      if (!absl::SimpleAtod(*v, &u) || !(u > 0 && u <= 1)) {
        return Bad(absl::StrCat("gpu_memory_utilization: ", *v, " is not in (0, 1]"));
      }
      log_.gpu_memory_utilization = u;
    }
    if (auto v = value("enforce_eager")) log_.enforce_eager = *v == "True";
    for (const char* key : {"dtype", "quantization", "kv_cache_dtype"}) {
      if (auto v = value(key)) {
        log_.config[key] = std::string(absl::StripPrefix(absl::StripSuffix(*v, "'"), "'"));
      }
    }
    return absl::OkStatus();
  }

  // A GiB figure after `marker` into measured[key] (or `out`), first occurrence only.
  absl::Status GiB(absl::string_view marker, const std::string& key,
                   std::optional<int64_t>* out = nullptr) {
    if (!absl::StrContains(*line_, marker)) return absl::OkStatus();
    std::optional<std::string> text = NumberAfter(*line_, marker);
    double gib = 0;
    if (!text || text->empty() || !absl::SimpleAtod(*text, &gib) || !std::isfinite(gib) ||
        std::fabs(gib) > 1e6) {
      return Bad(absl::StrCat("expected a number of GiB after '", marker, "'"));
    }
    const size_t dot = text->find('.');
    const int decimals = dot == std::string::npos ? 0 : static_cast<int>(text->size() - dot - 1);
    const int64_t half_unit =
        static_cast<int64_t>(std::floor(0.5 * std::pow(10.0, -std::min(decimals, 9)) * kGiB));
    const int64_t bytes = static_cast<int64_t>(std::llround(gib * kGiB));
    if (out != nullptr) {
      if (*out) return absl::OkStatus();
      *out = bytes;
    } else {
      if (log_.measured.count(key) > 0) return absl::OkStatus();  // rank 0's
      log_.measured[key] = bytes;
    }
    log_.precision_bytes = std::max(log_.precision_bytes, half_unit);
    return absl::OkStatus();
  }

  absl::Status Count(absl::string_view marker, const std::string& key) {
    if (!absl::StrContains(*line_, marker)) return absl::OkStatus();
    std::optional<std::string> text = NumberAfter(*line_, marker);
    int64_t n = 0;
    if (!text || !absl::SimpleAtoi(*text, &n) || n < 0) {
      return Bad(absl::StrCat("expected a count after '", marker, "'"));
    }
    log_.measured.emplace(key, n);
    return absl::OkStatus();
  }

  absl::Status Fraction(absl::string_view marker, std::optional<double>& out) {
    std::optional<std::string> text = NumberAfter(*line_, marker);
    double u = 0;
    if (!text || !absl::SimpleAtod(*text, &u) || !(u > 0 && u <= 1)) {
      return Bad(absl::StrCat("expected a utilization in (0, 1] after '", marker, "'"));
    }
    if (!out) out = u;
    return absl::OkStatus();
  }

  const std::string& source_;
  VllmLog& log_;
  const std::string* line_ = nullptr;
  int64_t no_ = 0;
};

}  // namespace

absl::StatusOr<VllmLog> ParseVllmLog(const std::string& text, const std::string& source) {
  VllmLog log;
  Reader reader(source, log);
  int64_t no = 0;
  bool v1_worker = false, v0_worker = false;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++no;
    const std::string line = Clean(raw);
    v1_worker = v1_worker || absl::StrContains(line, "gpu_worker.py") ||
                absl::StrContains(line, "EngineCore");
    v0_worker = v0_worker || absl::StrContains(line, "[worker.py") ||
                absl::StrContains(line, " worker.py:");
    RETURN_IF_ERROR(reader.Line(line, no));
  }
  if (log.generation.empty()) log.generation = v1_worker ? "V1" : v0_worker ? "V0" : "";
  // V0 0.6 printed the torch peak with the weights in it.
  if (auto peak = log.measured.find("peak_torch_bytes"); peak != log.measured.end()) {
    if (log.measured.count("weights_bytes") > 0 &&
        log.measured.count("activation_peak_bytes") == 0) {
      log.measured["activation_peak_bytes"] = peak->second - log.measured["weights_bytes"];
    }
    log.measured.erase(peak);
  }
  if (log.measured.count("kv_cache_tokens") == 0 && log.measured.count("num_gpu_blocks") > 0) {
    log.measured["kv_cache_tokens"] = log.measured["num_gpu_blocks"] * log.block_size.value_or(16);
    log.notes.push_back("kv_cache_tokens = num_gpu_blocks x block_size (the log printed blocks)");
  }
  const bool memory = log.measured.count("available_kv_cache_bytes") > 0 ||
                      log.measured.count("kv_cache_tokens") > 0 ||
                      log.measured.count("weights_bytes") > 0;
  if (!memory && !log.failed) {
    return absl::InvalidArgumentError(absl::StrCat(
        source,
        ": no vLLM memory lines (\"Model loading took\", \"Available KV cache memory\", "
        "\"GPU KV cache size\", \"# GPU blocks\" ...): not a vLLM startup log, or cut before the "
        "KV cache was sized"));
  }
  return log;
}

absl::StatusOr<nlohmann::json> CaseFromLog(const VllmLog& log, const CaseInputs& in) {
  nlohmann::json c;
  c["case"] = in.case_id;
  c["model"] = in.model_path;
  c["engine"] = "vllm";
  c["engine_version"] = log.version.empty() ? "~unknown" : log.version;
  if (log.version.empty()) c["engine_version_detail"] = "not printed in the log";
  c["engine_generation"] = log.generation.empty() ? "V1" : log.generation;
  auto cfg = [&](const char* key, const char* fallback) {
    auto it = log.config.find(key);
    std::string v = it == log.config.end() ? fallback : it->second;
    if (v == "None" || v == "none") v = "";
    return v;
  };
  c["quantization"] = cfg("quantization", "");
  c["dtype"] = cfg("dtype", "bfloat16");
  c["kv_cache_dtype"] =
      cfg("kv_cache_dtype", "auto").empty() ? "auto" : cfg("kv_cache_dtype", "auto");
  c["gpu"] = in.gpu;
  // vLLM >= 0.10 prints the total only at DEBUG level, but requested = total x utilization.
  std::optional<int64_t> total = log.gpu_total_bytes;
  std::string total_source = "log";
  if (auto r = log.measured.find("requested_bytes");
      !total && r != log.measured.end() && log.gpu_memory_utilization) {
    total = static_cast<int64_t>(
        std::llround(static_cast<double>(r->second) / *log.gpu_memory_utilization));
    total_source = "log: requested memory / gpu_memory_utilization";
  }
  if (!total) {
    total = in.gpu_total_bytes;
    total_source = in.gpu_total_source;
  }
  if (!total) {
    return absl::InvalidArgumentError(
        "the log does not print the GPU's total memory (vLLM >= 0.10 prints it at DEBUG level "
        "only): pass --gpu with a known GPU or --gpu-memory-bytes");
  }
  c["gpu_total_bytes"] = *total;
  c["gpu_total_source"] = total_source;
  c["tensor_parallel_size"] = log.tp.value_or(1);
  c["pipeline_parallel_size"] = log.pp.value_or(1);
  c["data_parallel_size"] = 1;
  if (!log.gpu_memory_utilization) {
    return absl::InvalidArgumentError(
        "the log does not say gpu_memory_utilization (a V0 log without its profiling line, or "
        "V1 at INFO level without non-default args): pass --vllm=\"vllm serve ... "
        "--gpu-memory-utilization U\"");
  }
  c["gpu_memory_utilization"] = *log.gpu_memory_utilization;
  if (!log.max_model_len) {
    return absl::InvalidArgumentError(
        "the log does not say max_model_len: pass --vllm=\"vllm serve ... --max-model-len N\"");
  }
  c["max_model_len"] = *log.max_model_len;
  if (log.max_num_seqs) c["max_num_seqs"] = *log.max_num_seqs;
  if (log.max_num_batched_tokens) c["max_num_batched_tokens"] = *log.max_num_batched_tokens;
  if (log.enforce_eager) c["enforce_eager"] = *log.enforce_eager;
  c["block_size"] = log.block_size.value_or(16);
  c["startup_status"] = log.failed ? "failed" : "ok";
  c["input_confidence"] =
      log.tp && log.max_model_len && total_source.rfind("log", 0) == 0 ? "high" : "medium";
  nlohmann::json m = nlohmann::json::object();
  for (const auto& [k, v] : log.measured) m[k] = v;
  if (log.precision_bytes > 0) m["precision_bytes"] = log.precision_bytes;
  c["measured"] = m;
  c["source"] = in.source;
  std::vector<std::string> notes = log.notes;
  if (log.failed) notes.push_back("startup failed: " + log.failure);
  if (!notes.empty()) {
    std::string joined;
    for (const std::string& n : notes) joined += (joined.empty() ? "" : "; ") + n;
    c["notes"] = joined;
  }
  return c;
}

}  // namespace fleetplan::cli

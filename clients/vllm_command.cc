#include "clients/vllm_command.h"

#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace fleetplan::cli {
namespace {

// vLLM engine and server flags that do not change GPU memory (vllm/engine/arg_utils.py,
// vllm/entrypoints/openai/cli_args.py): accepted and ignored. Any other flag is not one fleetplan
// knows — a typo, or a newer memory-relevant option — and is reported (refused with --strict).
bool KnownIrrelevantVllmFlag(absl::string_view flag) {
  static const char* const kFlags[] = {"--host",
                                       "--port",
                                       "--uvicorn-log-level",
                                       "--api-key",
                                       "--served-model-name",
                                       "--tokenizer",
                                       "--tokenizer-mode",
                                       "--revision",
                                       "--code-revision",
                                       "--tokenizer-revision",
                                       "--trust-remote-code",
                                       "--download-dir",
                                       "--load-format",
                                       "--config-format",
                                       "--seed",
                                       "--chat-template",
                                       "--response-role",
                                       "--disable-log-requests",
                                       "--disable-log-stats",
                                       "--enable-log-requests",
                                       "--max-log-len",
                                       "--enable-prefix-caching",
                                       "--no-enable-prefix-caching",
                                       "--enable-auto-tool-choice",
                                       "--tool-call-parser",
                                       "--reasoning-parser",
                                       "--generation-config",
                                       "--override-generation-config",
                                       "--disable-fastapi-docs",
                                       "--root-path",
                                       "--middleware",
                                       "--ssl-keyfile",
                                       "--ssl-certfile",
                                       "--allowed-origins",
                                       "--allow-credentials",
                                       "--allowed-methods",
                                       "--allowed-headers",
                                       "--lora-modules",
                                       "--prompt-adapters",
                                       "--max-logprobs",
                                       "--disable-frontend-multiprocessing",
                                       "--uds",
                                       "--api-server-count",
                                       "--hf-config-path",
                                       "--hf-token",
                                       "--logits-processor-pattern",
                                       "--guided-decoding-backend",
                                       "--scheduling-policy",
                                       "--distributed-executor-backend",
                                       "--worker-cls",
                                       "--device",
                                       "--enable-chunked-prefill",
                                       "--no-enable-chunked-prefill",
                                       "--max-seq-len-to-capture",
                                       "--disable-custom-all-reduce",
                                       "--otlp-traces-endpoint",
                                       "--collect-detailed-traces",
                                       "--model-impl"};
  for (const char* f : kFlags) {
    if (flag == f) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<VllmCommandLine> ParseVllmCommandLine(const std::string& command) {
  VllmCommandLine out;
  std::vector<std::string>& args = out.flags;
  std::vector<std::string> words =
      absl::StrSplit(command, absl::ByAnyChar(" \t\n"), absl::SkipEmpty());
  size_t i = 0;
  if (i < words.size() && (words[i] == "vllm" || absl::EndsWith(words[i], "/vllm"))) ++i;
  if (i < words.size() && words[i] == "serve") ++i;
  if (i >= words.size() || absl::StartsWith(words[i], "-")) {
    return absl::InvalidArgumentError(absl::StrCat("--vllm=\"", command.substr(0, 200),
                                                   "\": expected `vllm serve MODEL_DIR [flags]`"));
  }
  out.model_dir = words[i++];
  static const std::map<std::string, std::string> kValueFlags = {
      {"--tensor-parallel-size", "tp"},
      {"-tp", "tp"},
      {"--pipeline-parallel-size", "pp"},
      {"-pp", "pp"},
      {"--data-parallel-size", "dp"},
      {"-dp", "dp"},
      {"--max-model-len", "max-model-len"},
      {"--gpu-memory-utilization", "gpu-memory-utilization"},
      {"--max-num-seqs", "max-num-seqs"},
      {"--max-num-batched-tokens", "max-num-batched-tokens"},
      {"--block-size", "block-size"},
      {"--kv-cache-dtype", "kv-cache-dtype"},
      {"--dtype", "dtype"},
      {"--quantization", "quantization"},
      {"-q", "quantization"},
      {"--max-loras", "max-loras"},
      {"--max-lora-rank", "max-lora-rank"},
      {"--max-cpu-loras", "max-cpu-loras"},
      {"--cpu-offload-gb", "cpu-offload-gb"},
      {"--swap-space", "swap-space"},
      {"--mamba-cache-dtype", "mamba-cache-dtype"},
      {"--mamba-ssm-cache-dtype", "mamba-ssm-cache-dtype"},
  };
  bool expert_parallel = false;
  for (; i < words.size(); ++i) {
    std::string word = words[i];
    std::string value;
    bool has_value = false;
    if (size_t eq = word.find('='); eq != std::string::npos && absl::StartsWith(word, "-")) {
      value = word.substr(eq + 1);
      word = word.substr(0, eq);
      has_value = true;
    }
    if (word == "--enforce-eager") {
      args.push_back("--enforce-eager");
      continue;
    }
    if (word == "--enable-lora") {
      args.push_back("--enable-lora");
      continue;
    }
    if (word == "--enable-expert-parallel") {
      expert_parallel = true;
      continue;
    }
    auto it = kValueFlags.find(word);
    if (it == kValueFlags.end()) {
      if (absl::StartsWith(word, "-")) {
        (KnownIrrelevantVllmFlag(word) ? out.ignored : out.unknown).push_back(word);
        if (!has_value && i + 1 < words.size() && !absl::StartsWith(words[i + 1], "-")) ++i;
      } else {
        out.unknown.push_back(word);  // a stray word: vLLM would refuse it
      }
      continue;
    }
    if (!has_value) {
      if (i + 1 >= words.size()) {
        return absl::InvalidArgumentError(absl::StrCat("--vllm: ", word, " needs a value"));
      }
      value = words[++i];
    }
    args.push_back(absl::StrCat("--", it->second, "=", value));
  }
  if (expert_parallel) args.push_back("--expert-parallel");
  return out;
}

}  // namespace fleetplan::cli

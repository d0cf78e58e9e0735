// llama.cpp estimates from GGUF headers the tests write themselves (testing/gguf_writer.h). Each
// test names the llama.cpp source it follows (llama_cpp.h has the list).

#include "planner/estimator/llama_cpp.h"

#include "gtest/gtest.h"
#include "planner/common/units.h"
#include "planner/estimator/engine_constants.h"
#include "planner/estimator/testing/gguf_writer.h"

namespace fleetplan::estimator {
namespace {

using testing::TestModel;
using testing::WriteModel;

GgufFile Parse(const TestModel& m) {
  auto f = ParseGgufHeader(WriteModel(m));
  EXPECT_TRUE(f.ok()) << f.status();
  return *f;
}

EstimateRequest Request(LlamaCppConfig c = {}, int64_t gpus = 1) {
  EstimateRequest r;
  r.engine = Engine::kLlamaCpp;
  r.gpu_memory_bytes = 80 * kGiB;
  r.parallelism.pp = gpus;
  r.llama_cpp = c;
  return r;
}

// The default TestModel: 4 blocks, hidden 512, 8 heads of 64 (2 KV heads), FFN 1024, vocab 1024.
// Per block: 2 f32 norms (2 x 2048 B), q4_K q/o [512, 512] (147456 B each) and k [512, 128]
// (36864), q6_K v [512, 128] (53760), q4_K gate/up [512, 1024] (294912 each), q6_K down
// [1024, 512] (430080): all 512-element rows, so no CUDA row padding, all 128-byte multiples.
constexpr int64_t kBlock = 2 * 2048 + 2 * 147456 + 36864 + 53760 + 2 * 294912 + 430080;
constexpr int64_t kOutput = 2048 + 512 * 1024 / 256 * 210;  // output_norm + q6_K output
constexpr int64_t kTokenEmbd = 512 * 1024 / 32 * 34;        // q8_0, stays on the CPU
constexpr int64_t kKvPerTokenPerLayer = 2 * (2 * 64 * 2);   // K and V, 2 heads x 64 x f16

// src/llama-model.cpp load_tensors: all blocks and the output on the GPU, token_embd on the CPU;
// src/llama-kv-cache.cpp: K and V of every layer for every cell.
TEST(LlamaCppTest, WeightsAndKvOnOneGpu) {
  auto e = EstimateLlamaCpp(Parse({}), Request());
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_EQ(e->memory.stages.size(), 1u);
  const StageMemory& g = e->memory.stages[0];
  EXPECT_EQ(g.weights_bytes, 4 * kBlock + kOutput);
  EXPECT_EQ(g.num_layers, 4);
  // -c 0 is the model's 4096; -np auto is 4 slots over one unified cache (server.cpp).
  EXPECT_EQ(e->resolved.n_parallel, 4);
  EXPECT_TRUE(e->resolved.kv_unified);
  EXPECT_EQ(e->kv_cells, 4096);
  EXPECT_EQ(g.kv_cache_bytes, 4 * kKvPerTokenPerLayer * 4096);
  // Compute at n_ubatch 512 with flash attention: the FFN's gate and up (4 x 512 x (2 x 1024 +
  // 2 x 512)) plus the layer input (4 x 512 x 512) and the f16 mask (4096 x 512 x 2).
  EXPECT_EQ(g.activation_peak_bytes, 4 * 512 * 3072 + 4 * 512 * 512 + 4096 * 512 * 2);
  EXPECT_EQ(g.cuda_context_bytes, kCudaContextBytes);
  EXPECT_EQ(g.engine_overhead_bytes, kCublasWorkspaceBytes + 4 * 512 * 1024);
  EXPECT_EQ(g.total_bytes, g.weights_bytes + g.kv_cache_bytes + g.activation_peak_bytes +
                               g.cuda_context_bytes + g.engine_overhead_bytes);
  // Host: token_embd, the inputs (embeddings and the f32 mask), the logits of 4 slots.
  EXPECT_EQ(e->memory.host_bytes, kTokenEmbd + 4 * 512 * 512 + 4096 * 512 * 4 + 4 * 1024 * 4);
  EXPECT_TRUE(e->memory.fits);
  EXPECT_GT(g.high_bytes, g.total_bytes);
  EXPECT_GE(g.high_bytes - g.total_bytes,
            (g.activation_peak_bytes + g.cuda_context_bytes + g.engine_overhead_bytes) / 2)
      << "the modelled parts carry +50% (uncertainty.cc)";
  EXPECT_FALSE(e->memory.band_widened.empty());
}

// ggml-cuda.cu ggml_backend_cuda_buffer_type_get_alloc_size: a quantized tensor whose rows are
// not a multiple of 512 elements gets one padding row of (512 - ne0 % 512) elements.
TEST(LlamaCppTest, CudaPadsQuantizedRows) {
  TestModel m;
  m.embd = 256;
  m.heads = 4;
  auto e = EstimateLlamaCpp(Parse(m), Request());
  ASSERT_TRUE(e.ok()) << e.status();
  const int64_t q4k_pad = 256 / 256 * 144;  // a row of 256 more q4_K elements
  const int64_t q6k_pad = 256 / 256 * 210;
  // Per block: q [256,256], k [256,128], o [256,256], gate, up [256,1024] in q4_K, v [256,128] in
  // q6_K: six tensors with 256-element rows; down [1024, 256] has 1024-element rows.
  const int64_t block = 2 * 1024 + 2 * (256 * 256 / 256 * 144 + q4k_pad) +
                        (256 * 128 / 256 * 144 + q4k_pad) + (256 * 128 / 256 * 210 + q6k_pad) +
                        2 * (256 * 1024 / 256 * 144 + q4k_pad) + 1024 * 256 / 256 * 210;
  auto pad128 = [](int64_t b) { return (b + 127) / 128 * 128; };
  const int64_t padded = 2 * 1024 + 2 * pad128(256 * 256 / 256 * 144 + q4k_pad) +
                         pad128(256 * 128 / 256 * 144 + q4k_pad) +
                         pad128(256 * 128 / 256 * 210 + q6k_pad) +
                         2 * pad128(256 * 1024 / 256 * 144 + q4k_pad) + 1024 * 256 / 256 * 210;
  ASSERT_GT(padded, block) << "the 128-byte alignment adds to some of them";
  const int64_t output = 1024 + pad128(256 * 1024 / 256 * 210 + q6k_pad);
  EXPECT_EQ(e->memory.stages[0].weights_bytes, 4 * padded + output);
}

// load_tensors: with -ngl k the output layer and the last k - 1 blocks go to the GPU
// (i_gpu_start = n_layer + 1 - k); the rest, and their KV (the layer's device holds its cache),
// stay in host memory.
TEST(LlamaCppTest, PartialOffloadSplitsGpuAndHost) {
  LlamaCppConfig c;
  c.n_gpu_layers = 2;
  c.n_ctx = 4096;
  c.n_parallel = 1;
  auto e = EstimateLlamaCpp(Parse({}), Request(c));
  ASSERT_TRUE(e.ok()) << e.status();
  const StageMemory& g = e->memory.stages[0];
  EXPECT_EQ(e->gpu_layers, 1);
  EXPECT_EQ(g.first_layer, 3);
  EXPECT_EQ(g.weights_bytes, kBlock + kOutput);
  EXPECT_EQ(g.kv_cache_bytes, kKvPerTokenPerLayer * 4096);
  const int64_t host_compute = 4 * 512 * 512 + 4096 * 512 * 4 + 4 * 512 * 3072;
  EXPECT_EQ(e->memory.host_bytes,
            kTokenEmbd + 3 * kBlock + 3 * kKvPerTokenPerLayer * 4096 + host_compute + 4 * 1024 * 1);
  EXPECT_NE(LlamaServerCommand("m.gguf", *e).find("-ngl 2"), std::string::npos);

  c.n_gpu_layers = 0;
  auto cpu = EstimateLlamaCpp(Parse({}), Request(c));
  ASSERT_TRUE(cpu.ok());
  EXPECT_EQ(cpu->memory.stages[0].total_bytes, 0) << "nothing on the GPU at -ngl 0";
}

// llama-context.cpp: n_ctx padded to 256; without --kv-unified each slot gets n_ctx / np padded
// to 256, and n_ctx becomes n_ctx_seq x np.
TEST(LlamaCppTest, SlotsAndContextPadding) {
  LlamaCppConfig c;
  c.n_ctx = 5000;
  c.n_parallel = 3;
  auto e = EstimateLlamaCpp(Parse({}), Request(c));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->n_ctx_seq, 1792) << "5120 / 3 = 1706, padded to 1792";
  EXPECT_EQ(e->kv_cells, 1792 * 3);
  EXPECT_EQ(e->memory.max_model_len, 1792);
  EXPECT_EQ(e->memory.max_concurrency, 3);
  c.kv_unified = true;
  auto u = EstimateLlamaCpp(Parse({}), Request(c));
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->kv_cells, 5120);
  EXPECT_EQ(u->n_ctx_seq, 5120);
  EXPECT_NE(LlamaServerCommand("m.gguf", *u).find("--kv-unified"), std::string::npos);
}

// The workload chooses the slots and the context when -np and -c are not given; a workload the
// slots cannot hold does not fit and says why.
TEST(LlamaCppTest, WorkloadSetsSlotsAndContext) {
  EstimateRequest r = Request();
  r.concurrency = 8;
  r.context_tokens = 4096;
  auto e = EstimateLlamaCpp(Parse({}), r);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->resolved.n_parallel, 8);
  EXPECT_FALSE(e->resolved.kv_unified);
  EXPECT_EQ(e->resolved.n_ctx, 8 * 4096);
  EXPECT_EQ(e->memory.max_concurrency, 8);
  EXPECT_TRUE(e->memory.fits);
  EXPECT_EQ(LlamaServerCommand("/m/x.gguf", *e), "llama-server -m /m/x.gguf -c 32768 -np 8 -ngl 5");
  // A path is one shell word, whatever it holds.
  EXPECT_EQ(LlamaServerCommand("m;touch pwned", *e).rfind("llama-server -m 'm;touch pwned' -c", 0),
            0u);

  r.llama_cpp.n_parallel = 4;
  auto over = EstimateLlamaCpp(Parse({}), r);
  ASSERT_TRUE(over.ok());
  EXPECT_FALSE(over->memory.fits);
  EXPECT_NE(over->memory.reason.find("concurrency=8"), std::string::npos) << over->memory.reason;
}

// src/llama-kv-cache-iswa.cpp: the sliding-window layers' cache holds min(cells, n_swa x 1 +
// n_ubatch) padded to 256; gemma3 has 5 sliding layers in every 6 (llama-model.cpp
// set_swa_pattern(6)). --swa-full sizes them as full layers.
TEST(LlamaCppTest, SlidingWindowLayersHoldTheirWindow) {
  TestModel m;
  m.arch = "gemma3";
  m.layers = 6;
  m.sliding_window = 1024;
  LlamaCppConfig c;
  c.n_ctx = 8192;
  c.n_parallel = 1;
  auto e = EstimateLlamaCpp(Parse(m), Request(c));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->swa_cells, 1536);
  EXPECT_EQ(e->memory.stages[0].kv_cache_bytes, kKvPerTokenPerLayer * (5 * 1536 + 1 * 8192));
  c.swa_full = true;
  auto full = EstimateLlamaCpp(Parse(m), Request(c));
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->memory.stages[0].kv_cache_bytes, kKvPerTokenPerLayer * 6 * 8192);
  // An architecture llama.cpp gives no sliding layers: every layer full, and a note says so.
  m.arch = "llama";
  c.swa_full = false;
  auto llama = EstimateLlamaCpp(Parse(m), Request(c));
  ASSERT_TRUE(llama.ok());
  EXPECT_EQ(llama->memory.stages[0].kv_cache_bytes, kKvPerTokenPerLayer * 6 * 8192);
  bool noted = false;
  for (const auto& n : llama->memory.notes) noted |= n.find("sliding window") != std::string::npos;
  EXPECT_TRUE(noted);
}

// -ctk/-ctv: rows of the cache type (q8_0: 32 elements in 34 bytes); a quantized V needs flash
// attention (llama-context.cpp refuses it otherwise); without flash attention the compute buffer
// holds the f32 KQ [n_kv, n_ubatch, n_head].
TEST(LlamaCppTest, CacheTypesAndFlashAttention) {
  LlamaCppConfig c;
  c.n_ctx = 4096;
  c.n_parallel = 1;
  c.cache_type_k = "q8_0";
  c.cache_type_v = "q8_0";
  c.flash_attn = FlashAttn::kOn;
  auto q = EstimateLlamaCpp(Parse({}), Request(c));
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->memory.stages[0].kv_cache_bytes, 4 * 4096 * 2 * (128 / 32 * 34));
  const std::string line = LlamaServerCommand("m.gguf", *q);
  EXPECT_NE(line.find("-ctk q8_0 -ctv q8_0 -fa on"), std::string::npos) << line;

  c.flash_attn = FlashAttn::kOff;
  auto refused = EstimateLlamaCpp(Parse({}), Request(c));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("cache_type_v=q8_0"), std::string::npos);

  c.cache_type_v = "f16";
  auto off = EstimateLlamaCpp(Parse({}), Request(c));
  ASSERT_TRUE(off.ok());
  c.flash_attn = FlashAttn::kOn;
  auto on = EstimateLlamaCpp(Parse({}), Request(c));
  ASSERT_TRUE(on.ok());
  EXPECT_GE(
      off->memory.stages[0].activation_peak_bytes - on->memory.stages[0].activation_peak_bytes,
      int64_t{4} * 4096 * 512 * 8 - 4 * 512 * 3072)
      << "the KQ matrix replaces the FFN as the layer's peak";
}

// load_tensors: -ts weights split the blocks (and the output) by cumulative share: with 3,1 over
// 8 blocks + output, blocks 0-6 (il / 9 < 0.75) on GPU 0, block 7 and the output on GPU 1.
TEST(LlamaCppTest, TensorSplitOverGpus) {
  TestModel m;
  m.layers = 8;
  LlamaCppConfig c;
  c.tensor_split = {3, 1};
  c.n_parallel = 1;
  auto e = EstimateLlamaCpp(Parse(m), Request(c, 2));
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_EQ(e->memory.stages.size(), 2u);
  EXPECT_EQ(e->memory.stages[0].num_layers, 7);
  EXPECT_EQ(e->memory.stages[1].num_layers, 1);
  EXPECT_EQ(e->memory.stages[1].first_layer, 7);
  EXPECT_EQ(e->memory.stages[0].weights_bytes, 7 * kBlock);
  EXPECT_EQ(e->memory.stages[1].weights_bytes, kBlock + kOutput);
  EXPECT_EQ(e->memory.BytesPerRank().size(), 2u);
  EXPECT_NE(LlamaServerCommand("m.gguf", *e).find("-ts 3,1"), std::string::npos);
  // Without -ts: by free memory, equal on identical GPUs (il / 9 < 0.5: blocks 0-4 on GPU 0).
  c.tensor_split.clear();
  auto even = EstimateLlamaCpp(Parse(m), Request(c, 2));
  ASSERT_TRUE(even.ok());
  EXPECT_EQ(even->memory.stages[0].num_layers, 5);
  c.tensor_split = {1, 1, 1};
  EXPECT_FALSE(EstimateLlamaCpp(Parse(m), Request(c, 2)).ok());
}

// A tied output (no output.weight): llama.cpp loads token_embd a second time as the output, on
// the output layer's device.
TEST(LlamaCppTest, TiedOutputIsACopyOnTheGpu) {
  TestModel m;
  m.tied = true;
  auto e = EstimateLlamaCpp(Parse(m), Request());
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->memory.stages[0].weights_bytes, 4 * kBlock + 2048 + kTokenEmbd);
}

// --n-cpu-moe N: the experts of blocks 0..N-1 stay on the CPU (common/common.h
// LLM_FFN_EXPS_REGEX); the router and attention stay on the GPU.
TEST(LlamaCppTest, CpuMoeKeepsExpertsOnTheHost) {
  TestModel m;
  m.experts = 8;
  m.experts_used = 2;
  m.ff = 512;
  LlamaCppConfig c;
  c.n_parallel = 1;
  auto all = EstimateLlamaCpp(Parse(m), Request(c));
  c.n_cpu_moe = 2;
  auto two = EstimateLlamaCpp(Parse(m), Request(c));
  ASSERT_TRUE(all.ok() && two.ok());
  const int64_t experts = 2 * (512 * 512 * 8 / 256 * 144) + 512 * 512 * 8 / 256 * 210;
  EXPECT_EQ(all->memory.stages[0].weights_bytes - two->memory.stages[0].weights_bytes, 2 * experts);
  EXPECT_EQ(two->memory.host_bytes - all->memory.host_bytes, 2 * experts);
  EXPECT_NE(LlamaServerCommand("m.gguf", *two).find("--n-cpu-moe 2"), std::string::npos);
}

// -ngl auto with --fit: the most layers that keep every GPU's high end within the GPU less the
// 1 GiB target (common/common.h fit_params_target); a model that fits takes all of them.
TEST(LlamaCppTest, FitChoosesGpuLayers) {
  TestModel m;
  m.layers = 32;
  m.embd = 2048;
  m.heads = 16;
  m.ff = 8192;
  LlamaCppConfig c;
  c.n_parallel = 1;
  c.n_ctx = 4096;
  EstimateRequest r = Request(c);
  auto big = EstimateLlamaCpp(Parse(m), r);
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(big->resolved.n_gpu_layers, 33);
  r.gpu_memory_bytes = big->memory.max_high_bytes / 2 + (int64_t{1} << 30);
  auto small = EstimateLlamaCpp(Parse(m), r);
  ASSERT_TRUE(small.ok());
  EXPECT_LT(small->resolved.n_gpu_layers, 33);
  EXPECT_GT(small->resolved.n_gpu_layers, 0);
  EXPECT_TRUE(small->memory.fits);
  EXPECT_LE(small->memory.max_high_bytes, r.gpu_memory_bytes - (int64_t{1} << 30));
  EXPECT_GT(small->memory.host_bytes, big->memory.host_bytes);
  // One more layer would not have fitted the target.
  r.llama_cpp.n_gpu_layers = small->resolved.n_gpu_layers + 1;
  auto more = EstimateLlamaCpp(Parse(m), r);
  ASSERT_TRUE(more.ok());
  EXPECT_GT(more->memory.max_high_bytes, r.gpu_memory_bytes - (int64_t{1} << 30));
  // With --fit off, -ngl auto is every layer, and it does not fit.
  r.llama_cpp.n_gpu_layers = -1;
  r.llama_cpp.fit = false;
  auto unfit = EstimateLlamaCpp(Parse(m), r);
  ASSERT_TRUE(unfit.ok());
  EXPECT_FALSE(unfit->memory.fits);
  EXPECT_NE(LlamaServerCommand("m.gguf", *unfit).find("--fit off"), std::string::npos);
}

TEST(LlamaCppTest, BadRequestsNameTheField) {
  const GgufFile f = Parse({});
  auto message = [&](EstimateRequest r) {
    auto e = EstimateLlamaCpp(f, r);
    EXPECT_FALSE(e.ok());
    return std::string(e.status().message());
  };
  EstimateRequest r = Request();
  r.parallelism.tp = 2;
  EXPECT_NE(message(r).find("tp=2"), std::string::npos);
  r = Request();
  r.llama_cpp.cache_type_k = "q3_K";
  EXPECT_NE(message(r).find("cache_type_k=\"q3_K\""), std::string::npos);
  r = Request();
  r.llama_cpp.n_parallel = 300;
  EXPECT_NE(message(r).find("n_parallel=300"), std::string::npos);
  r = Request();
  r.llama_cpp.n_ubatch = 0;
  EXPECT_NE(message(r).find("n_ubatch=0"), std::string::npos);
  r = Request();
  r.kv_cache_dtype = KvCacheDType::kFp8;
  EXPECT_NE(message(r).find("cache_type_k"), std::string::npos);
  r = Request();
  r.engine = Engine::kVllm;
  EXPECT_NE(message(r).find("engine=vllm"), std::string::npos);
  r = Request();
  r.llama_cpp.n_ctx = int64_t{1} << 40;
  EXPECT_NE(message(r).find("n_ctx="), std::string::npos);
  // Negative, zero and out-of-range values, each named with its value.
  struct Bad {
    void (*set)(EstimateRequest&);
    const char* expect;
  };
  const Bad bad[] = {
      {[](EstimateRequest& q) { q.llama_cpp.n_gpu_layers = -2; }, "llama_cpp.n_gpu_layers=-2"},
      {[](EstimateRequest& q) { q.llama_cpp.n_cpu_moe = -1; }, "llama_cpp.n_cpu_moe=-1"},
      {[](EstimateRequest& q) { q.llama_cpp.n_cpu_moe = 5; }, "llama_cpp.n_cpu_moe=5"},
      {[](EstimateRequest& q) { q.llama_cpp.n_batch = 0; }, "llama_cpp.n_batch=0"},
      {[](EstimateRequest& q) { q.llama_cpp.n_ctx = -1; }, "llama_cpp.n_ctx=-1"},
      {[](EstimateRequest& q) { q.llama_cpp.fit_margin_bytes = -1; },
       "llama_cpp.fit_margin_bytes=-1"},
      {[](EstimateRequest& q) { q.llama_cpp.cache_type_v = ""; }, "llama_cpp.cache_type_v=\"\""},
      {[](EstimateRequest& q) { q.llama_cpp.tensor_split = {-1}; }, "tensor_split entry -1"},
      {[](EstimateRequest& q) { q.llama_cpp.tensor_split = {0}; }, "must not be all zero"},
      {[](EstimateRequest& q) { q.gpu_memory_bytes = 0; }, "gpu_memory_bytes=0"},
      {[](EstimateRequest& q) { q.parallelism.pp = 17; }, "pp=17"},
      {[](EstimateRequest& q) { q.concurrency = -3; }, "llama_cpp.concurrency=-3"},
      {[](EstimateRequest& q) { q.context_tokens = -1; }, "llama_cpp.context_tokens=-1"},
  };
  for (const Bad& b : bad) {
    EstimateRequest q = Request();
    b.set(q);
    EXPECT_NE(message(q).find(b.expect), std::string::npos) << b.expect;
  }
  // Estimate() with a config.json refuses llama.cpp and says what to give instead.
  ModelSpec spec;
  auto via_config = Estimate(spec, Request());
  EXPECT_FALSE(via_config.ok());
  // A GGUF without the metadata the graph needs names the key.
  testing::GgufWriter w;
  w.Str("general.architecture", "llama").U32("llama.block_count", 2);
  auto thin = ParseGgufHeader(w.Build());
  ASSERT_TRUE(thin.ok());
  auto e = EstimateLlamaCpp(*thin, Request());
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("llama."), std::string::npos) << e.status();
}

// A Llama-3-8B-shaped file (32 blocks, hidden 4096, 32 heads, 8 KV heads, FFN 14336, vocab
// 128256) at -c 8192 on one slot: with flash attention the largest tensor of the graph is the
// f32 logits [128256, 512] (250.5 MiB + the final norm), without it the KQ [8192, 512, 32] f32
// (512 MiB) on every layer's device.
TEST(LlamaCppTest, LlamaThreeEightBShape) {
  TestModel m;
  m.layers = 32;
  m.embd = 4096;
  m.heads = 32;
  m.kv_heads = 8;
  m.head_dim = 128;
  m.ff = 14336;
  m.vocab = 128256;
  m.context = 8192;
  LlamaCppConfig c;
  c.n_parallel = 1;
  c.flash_attn = FlashAttn::kOn;
  auto fa = EstimateLlamaCpp(Parse(m), Request(c));
  ASSERT_TRUE(fa.ok()) << fa.status();
  EXPECT_EQ(fa->memory.stages[0].activation_peak_bytes, int64_t{4} * 512 * (4096 + 128256));
  EXPECT_EQ(fa->memory.stages[0].kv_cache_bytes, int64_t{32} * 8192 * 2 * 8 * 128 * 2)
      << "1 GiB: 32 layers x 8192 cells x (K + V) x 8 heads x 128 x f16";
  c.flash_attn = FlashAttn::kOff;
  auto no_fa = EstimateLlamaCpp(Parse(m), Request(c));
  ASSERT_TRUE(no_fa.ok());
  EXPECT_GE(no_fa->memory.stages[0].activation_peak_bytes, int64_t{512} * kMiB);
  EXPECT_LT(no_fa->memory.stages[0].activation_peak_bytes, int64_t{600} * kMiB);
}

// Ollama's defaults (docs/faq.md, docs/context-length.mdx): one slot; the context per request by
// the GPUs' VRAM (under 24 GiB 4k, under 48 GiB 32k, else 256k) and at most the model's; its
// settings in the environment of `ollama serve`; a band wider than llama-server's.
TEST(LlamaCppTest, OllamaDefaults) {
  TestModel m;
  m.context = 131072;
  const GgufFile f = Parse(m);
  LlamaCppConfig c;
  c.ollama = true;
  EstimateRequest small = Request(c);
  small.gpu_memory_bytes = 16 * kGiB;
  auto e = EstimateLlamaCpp(f, small);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->resolved.n_parallel, 1);
  EXPECT_FALSE(e->resolved.kv_unified);
  EXPECT_EQ(e->kv_cells, 4096);
  EXPECT_EQ(LlamaServerCommand("", *e),
            "OLLAMA_CONTEXT_LENGTH=4096 OLLAMA_NUM_PARALLEL=1 ollama serve");
  EstimateRequest mid = Request(c);
  mid.gpu_memory_bytes = 40 * kGiB;
  EXPECT_EQ(EstimateLlamaCpp(f, mid)->kv_cells, 32768);
  EstimateRequest big = Request(c);  // 80 GiB: 256k, capped at the model's 131072
  EXPECT_EQ(EstimateLlamaCpp(f, big)->kv_cells, 131072);
  // Two 16 GiB GPUs are 32 GiB of VRAM: 32k.
  EstimateRequest two = Request(c, 2);
  two.gpu_memory_bytes = 16 * kGiB;
  EXPECT_EQ(EstimateLlamaCpp(f, two)->kv_cells, 32768);
  // Slots and a workload context: -c is their product, each slot its own stream.
  c.n_parallel = 3;
  EstimateRequest work = Request(c);
  work.context_tokens = 8192;
  auto w = EstimateLlamaCpp(f, work);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->kv_cells, 3 * 8192);
  EXPECT_EQ(LlamaServerCommand("", *w).rfind("OLLAMA_CONTEXT_LENGTH=8192 OLLAMA_NUM_PARALLEL=3", 0),
            0u);
  auto plain = EstimateLlamaCpp(f, [&] {
    EstimateRequest r = work;
    r.llama_cpp.ollama = false;
    return r;
  }());
  ASSERT_TRUE(plain.ok());
  EXPECT_GT(w->memory.stages[0].high_bytes - w->memory.stages[0].total_bytes,
            plain->memory.stages[0].high_bytes - plain->memory.stages[0].total_bytes)
      << "a wider band";
  // One KV type for both, and no unified cache.
  c.cache_type_k = "q8_0";
  EXPECT_FALSE(EstimateLlamaCpp(f, Request(c)).ok());
  c.cache_type_k = "f16";
  c.kv_unified = true;
  auto unified = EstimateLlamaCpp(f, Request(c));
  ASSERT_FALSE(unified.ok());
  EXPECT_NE(unified.status().message().find("kv_unified"), std::string::npos);
}

// An mmproj file (tools/mtmd clip.cpp): weights exact from its tensors in CUDA buffers (128-byte
// aligned), clip's compute buffer from clip.vision.*: a fixed-size CLIP tower of 112 px in 14-px
// patches with a class token is 65 tokens a pass; a Qwen2.5-VL merger runs the image at its size
// in 28-px units. Both on the first GPU, beside the model.
std::string WriteMmproj(const std::string& projector, bool with_patch = true) {
  testing::GgufWriter w;
  w.Str("general.architecture", "clip")
      .Str("clip.projector_type", projector)
      .U32("clip.vision.embedding_length", 64)
      .U32("clip.vision.feed_forward_length", 256)
      .U32("clip.vision.attention.head_count", 4)
      .U32("clip.vision.image_size", 112)
      .U32("clip.vision.block_count", 2);
  if (with_patch) w.U32("clip.vision.patch_size", 14);
  w.Tensor("v.class_embd", {64}, testing::kF32)
      .Tensor("v.patch_embd.weight", {14, 14, 3, 64}, testing::kF16)
      .Tensor("v.position_embd.weight", {64, 65}, testing::kF32);
  for (int i = 0; i < 2; ++i) {
    const std::string b = "v.blk." + std::to_string(i) + ".";
    for (const char* n : {"attn_q", "attn_k", "attn_v", "attn_out"}) {
      w.Tensor(b + n + ".weight", {64, 64}, testing::kF16);
    }
    w.Tensor(b + "ffn_up.weight", {64, 256}, testing::kF16)
        .Tensor(b + "ffn_down.weight", {256, 64}, testing::kF16)
        .Tensor(b + "ln1.weight", {64}, testing::kF32);
  }
  w.Tensor("mm.0.weight", {64, 512}, testing::kF16);
  return w.Build();
}

TEST(LlamaCppTest, MmprojFileWeightsAndClipBuffer) {
  auto mm_file = ParseGgufHeader(WriteMmproj("mlp"));
  ASSERT_TRUE(mm_file.ok()) << mm_file.status();
  std::vector<std::string> notes;
  LlamaCppConfig c;
  c.flash_attn = FlashAttn::kOff;
  auto mm = LlamaCppMmprojFromGguf(*mm_file, Request(c), notes);
  ASSERT_TRUE(mm.ok()) << mm.status();
  auto pad = [](int64_t b) { return (b + 127) / 128 * 128; };
  const int64_t weights = pad(256) + pad(14 * 14 * 3 * 64 * 2) + pad(64 * 65 * 4) +
                          2 * (4 * pad(64 * 64 * 2) + 2 * pad(64 * 256 * 2) + pad(256)) +
                          pad(64 * 512 * 2);
  EXPECT_EQ(mm->weights_bytes, weights);
  EXPECT_EQ(mm->patches, 65);
  const int64_t P = 65;
  EXPECT_EQ(mm->compute_bytes,
            4 * P * 2 * 64 + std::max(4 * P * 3 * 64 + 4 * P * P * 4, 4 * P * 256));
  // Beside the model on the first GPU.
  const GgufFile model = Parse({});
  auto without = EstimateLlamaCpp(model, Request(c));
  auto with = EstimateLlamaCpp(model, Request(c), &*mm);
  ASSERT_TRUE(without.ok() && with.ok());
  EXPECT_EQ(with->memory.stages[0].weights_bytes - without->memory.stages[0].weights_bytes,
            weights);
  EXPECT_EQ(with->memory.stages[0].activation_peak_bytes -
                without->memory.stages[0].activation_peak_bytes,
            mm->compute_bytes);
  // A native-resolution merger: 682 x 1024 is 25 x 37 units of 28 px, 50 x 74 patches.
  auto qwen_file = ParseGgufHeader(WriteMmproj("qwen2.5vl_merger"));
  ASSERT_TRUE(qwen_file.ok());
  c.image_height = 682;
  c.image_width = 1024;
  auto qwen = LlamaCppMmprojFromGguf(*qwen_file, Request(c), notes);
  ASSERT_TRUE(qwen.ok()) << qwen.status();
  EXPECT_EQ(qwen->patches, 50 * 74);
  // Not an mmproj, no patch size: refused by the key.
  auto text = LlamaCppMmprojFromGguf(model, Request(c), notes);
  ASSERT_FALSE(text.ok());
  EXPECT_NE(text.status().message().find("general.architecture=llama"), std::string::npos);
  auto no_patch = ParseGgufHeader(WriteMmproj("mlp", /*with_patch=*/false));
  ASSERT_TRUE(no_patch.ok());
  auto refused = LlamaCppMmprojFromGguf(*no_patch, Request(c), notes);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("patch_size=0"), std::string::npos);
  // An absurd width is refused before any product could overflow.
  testing::GgufWriter huge;
  huge.Str("general.architecture", "clip")
      .U32("clip.vision.embedding_length", 1u << 31)
      .U32("clip.vision.attention.head_count", 4)
      .U32("clip.vision.image_size", 112)
      .U32("clip.vision.patch_size", 14);
  auto huge_file = ParseGgufHeader(huge.Build());
  ASSERT_TRUE(huge_file.ok()) << huge_file.status();
  EXPECT_FALSE(LlamaCppMmprojFromGguf(*huge_file, Request(c), notes).ok());
}

}  // namespace
}  // namespace fleetplan::estimator

// cuBLASLt linear layer with a measured algorithm choice (contract in gemm_lt.h).
//
// Layout: cuBLASLt is column-major. The bytes of row-major w[n, k] are a column-major [k, n]
// matrix (ld k), those of x[m, k] a column-major [k, m] (ld k), those of y[m, n] a column-major
// [n, m] (ld n). So y^T = w x^T is D = op(A) B with A = w (transa = T, op(A) = [n, k]), B = x
// (transb = N, [k, m]) and D = y ([n, m]); the bias epilogue adds bias[row of D] = bias[n]; C =
// residual shares D's layout.
#include "actors/kernels/gemm_lt.h"

#include <cublasLt.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "actors/kernels/gemm_tune_file.h"

namespace distri::kernels {
namespace {

thread_local std::string t_last_error;
thread_local TunedLinearChoice t_last_choice;

// Split-K partial sums are reduced in fp32 only (not in the fp16/bf16 output, nor "in place"
// in the output buffer), so every candidate keeps the fp32-accumulation contract.
constexpr uint32_t kReductionMask = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
// The heuristic's own first choice stays unless another candidate is this much faster: keeps
// the pick stable against timing noise.
constexpr float kKeepFirstMargin = 1.03f;
constexpr int kTimingRounds = 2;

cudaError_t Fail(cudaError_t code, std::string msg) {
  t_last_error = std::move(msg);
  return code;
}

std::string CublasMessage(const char* what, cublasStatus_t st) {
  return std::string(what) + ": " + cublasLtGetStatusName(st) + " (" + cublasLtGetStatusString(st) + ")";
}

int64_t AlignmentOf(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  int64_t al = 256;
  while (al > 1 && a % static_cast<uintptr_t>(al) != 0) al /= 2;
  return al;
}

bool Overlaps(const void* a, size_t a_bytes, const void* b, size_t b_bytes) {
  if (a == nullptr || b == nullptr) return false;
  const auto pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
  return pa < pb + b_bytes && pb < pa + a_bytes;
}

// ---- One cuBLASLt handle per device, for the life of the process (destroying handles at exit,
// after the CUDA runtime may be gone, is riskier than leaking them).
cudaError_t HandleFor(int device, cublasLtHandle_t* out) {
  static std::mutex mu;
  static std::map<int, cublasLtHandle_t> handles;
  std::lock_guard<std::mutex> lock(mu);
  auto it = handles.find(device);
  if (it == handles.end()) {
    cublasLtHandle_t h = nullptr;
    cublasStatus_t st = cublasLtCreate(&h);
    if (st != CUBLAS_STATUS_SUCCESS) return Fail(cudaErrorUnknown, CublasMessage("cublasLtCreate", st));
    it = handles.emplace(device, h).first;
  }
  *out = it->second;
  return cudaSuccess;
}

// "sm90:132:NVIDIA_H100_80GB_HBM3": what a tuned choice is valid for, across processes (the
// device ordinal is not: rank r of a gang runs on device r).
std::string GpuName(int device) {
  static std::mutex mu;
  static std::map<int, std::string> names;
  std::lock_guard<std::mutex> lock(mu);
  auto it = names.find(device);
  if (it != names.end()) return it->second;
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    cudaGetLastError();
    return "unknown";  // not cached: the next call asks again
  }
  std::string name;
  for (const char* c = prop.name; *c != '\0'; ++c) {
    const bool keep = std::isalnum(static_cast<unsigned char>(*c)) || *c == '-' || *c == '.' || *c == '_';
    name += keep ? *c : '_';
  }
  std::string s = "sm" + std::to_string(prop.major) + std::to_string(prop.minor) + ":" +
                  std::to_string(prop.multiProcessorCount) + ":" + name;
  names.emplace(device, s);
  return s;
}

size_t CublasLtVersion() {
  static const size_t v = cublasLtGetVersion();
  return v;
}

// ---- The descriptors of one problem (pointers other than the bias are passed at launch).
struct Problem {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, cd = nullptr;

  Problem() = default;
  Problem(const Problem&) = delete;
  Problem& operator=(const Problem&) = delete;
  ~Problem() {
    if (cd) cublasLtMatrixLayoutDestroy(cd);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }

  cudaError_t Init(ElemType t, int64_t m, int64_t n, int64_t k, const void* bias) {
    const cudaDataType_t dt = t == ElemType::kHalf ? CUDA_R_16F : CUDA_R_16BF;
    cublasStatus_t st = cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    if (st != CUBLAS_STATUS_SUCCESS) return Fail(cudaErrorUnknown, CublasMessage("cublasLtMatmulDescCreate", st));
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    const cublasLtEpilogue_t epilogue = bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
    st = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
    if (st == CUBLAS_STATUS_SUCCESS) {
      st = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
    }
    if (st == CUBLAS_STATUS_SUCCESS) {
      st = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue);
    }
    if (st == CUBLAS_STATUS_SUCCESS && bias) {
      st = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
    }
    if (st != CUBLAS_STATUS_SUCCESS) return Fail(cudaErrorUnknown, CublasMessage("cublasLtMatmulDescSetAttribute", st));
    st = cublasLtMatrixLayoutCreate(&a, dt, static_cast<uint64_t>(k), static_cast<uint64_t>(n), k);
    if (st == CUBLAS_STATUS_SUCCESS) {
      st = cublasLtMatrixLayoutCreate(&b, dt, static_cast<uint64_t>(k), static_cast<uint64_t>(m), k);
    }
    if (st == CUBLAS_STATUS_SUCCESS) {
      st = cublasLtMatrixLayoutCreate(&cd, dt, static_cast<uint64_t>(n), static_cast<uint64_t>(m), n);
    }
    if (st != CUBLAS_STATUS_SUCCESS) return Fail(cudaErrorUnknown, CublasMessage("cublasLtMatrixLayoutCreate", st));
    return cudaSuccess;
  }
};

struct Launch {
  cublasLtHandle_t handle;
  const Problem* p;
  const void *x, *w, *residual;
  void* y;
  void* workspace;
  size_t workspace_bytes;
  cudaStream_t stream;

  cublasStatus_t Run(const cublasLtMatmulAlgo_t& algo) const {
    const float alpha = 1.f, beta = residual ? 1.f : 0.f;
    return cublasLtMatmul(handle, p->op, &alpha, w, p->a, x, p->b, &beta, residual ? residual : y, p->cd, y, p->cd,
                          &algo, workspace, workspace_bytes, stream);
  }

  // The workspace `algo` needs, or nullopt when cuBLASLt rejects it for this problem.
  std::optional<size_t> Check(const cublasLtMatmulAlgo_t& algo) const {
    cublasLtMatmulHeuristicResult_t r{};
    if (cublasLtMatmulAlgoCheck(handle, p->op, p->a, p->b, p->cd, p->cd, &algo, &r) != CUBLAS_STATUS_SUCCESS) {
      return std::nullopt;
    }
    return r.workspaceSize;
  }
};

// ---- Process-wide choices.
struct MemKey {
  int device;
  GemmTuneKey key;
  bool operator<(const MemKey& o) const { return std::tie(device, key) < std::tie(o.device, o.key); }
};

struct Cached {
  cublasLtMatmulAlgo_t algo;
  size_t workspace;
  TunedLinearChoice info;
};

struct State {
  std::mutex mu;
  std::map<MemKey, Cached> choices;
  bool file_loaded = false;
  std::map<GemmTuneKey, std::array<uint64_t, 8>> file_entries;  // first line of each key wins
  bool path_overridden = false;
  std::string path_override;
};

State& GetState() {
  static State* s = new State;  // never destroyed: calls may come from other static destructors
  return *s;
}

std::string CachePathLocked(const State& s) {
  if (s.path_overridden) return s.path_override;
  const char* e = std::getenv("DISTRI_GEMM_TUNE_CACHE");
  return e ? std::string(e) : std::string();
}

void MergeFileEntriesLocked(State& s, const std::vector<GemmTuneEntry>& entries) {
  for (const GemmTuneEntry& e : entries) s.file_entries.try_emplace(e.key, e.algo);
}

void EnsureFileLoadedLocked(State& s) {
  if (s.file_loaded) return;
  s.file_loaded = true;
  const std::string path = CachePathLocked(s);
  if (path.empty()) return;
  std::vector<GemmTuneEntry> entries;
  ReadGemmTuneFile(path, CublasLtVersion(), /*warn=*/true, &entries);
  MergeFileEntriesLocked(s, entries);
}

std::array<uint64_t, 8> Words(const cublasLtMatmulAlgo_t& a) {
  std::array<uint64_t, 8> w{};
  static_assert(sizeof(a.data) == sizeof(uint64_t) * 8, "cublasLtMatmulAlgo_t is 8 words");
  std::memcpy(w.data(), a.data, sizeof a.data);
  return w;
}

cublasLtMatmulAlgo_t Algo(const std::array<uint64_t, 8>& w) {
  cublasLtMatmulAlgo_t a{};
  std::memcpy(a.data, w.data(), sizeof a.data);
  return a;
}

void SetChoice(TunedLinearChoice* info, TunedLinearSource source, const cublasLtMatmulAlgo_t& algo) {
  info->source = source;
  const auto w = Words(algo);
  std::copy(w.begin(), w.end(), info->algo);
}

bool IsCapturing(cudaStream_t stream) {
  cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &cs) != cudaSuccess) {
    cudaGetLastError();
    return true;  // unsure: do not synchronise
  }
  return cs != cudaStreamCaptureStatusNone;
}

cudaError_t Heuristic(const Launch& l, int64_t align, std::vector<cublasLtMatmulHeuristicResult_t>* out) {
  out->clear();
  cublasLtMatmulPreference_t pref = nullptr;
  cublasStatus_t st = cublasLtMatmulPreferenceCreate(&pref);
  if (st != CUBLAS_STATUS_SUCCESS) return Fail(cudaErrorUnknown, CublasMessage("cublasLtMatmulPreferenceCreate", st));
  const uint64_t ws = l.workspace ? l.workspace_bytes : 0;
  const uint32_t al = static_cast<uint32_t>(align), mask = kReductionMask;
  st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
  for (auto attr : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES}) {
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatmulPreferenceSetAttribute(pref, attr, &al, sizeof al);
  }
  if (st == CUBLAS_STATUS_SUCCESS) {
    st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &mask, sizeof mask);
  }
  std::vector<cublasLtMatmulHeuristicResult_t> results(kTunedLinearCandidates);
  int returned = 0;
  if (st == CUBLAS_STATUS_SUCCESS) {
    st = cublasLtMatmulAlgoGetHeuristic(l.handle, l.p->op, l.p->a, l.p->b, l.p->cd, l.p->cd, pref,
                                        kTunedLinearCandidates, results.data(), &returned);
  }
  cublasLtMatmulPreferenceDestroy(pref);
  if (st == CUBLAS_STATUS_NOT_SUPPORTED) return Fail(cudaErrorNotSupported, CublasMessage("cuBLASLt heuristic", st));
  if (st != CUBLAS_STATUS_SUCCESS) return Fail(cudaErrorUnknown, CublasMessage("cublasLtMatmulAlgoGetHeuristic", st));
  for (int i = 0; i < returned; ++i) {
    if (results[i].state == CUBLAS_STATUS_SUCCESS && results[i].workspaceSize <= ws) out->push_back(results[i]);
  }
  if (out->empty()) return Fail(cudaErrorNotSupported, "cuBLASLt has no algorithm for this GEMM");
  return cudaSuccess;
}

struct TuneResult {
  int best = -1;
  std::vector<float> us;  // per candidate, +inf where it failed
};

// Times every candidate (see gemm_lt.h for the procedure). Each candidate's timed launches are
// captured into a CUDA graph and replayed: launched one by one from the host, a small GEMM
// (m = 1..512 here) measures cublasLtMatmul's host cost (~8 us a call on H100), not the kernel,
// and the UNet runs these GEMMs from a graph anyway. The graphs run on a private stream that
// first waits for the caller's stream (the inputs), and everything is synchronised before
// returning, so the caller's stream sees the workspace and y in order.
cudaError_t Tune(const Launch& l, const std::vector<cublasLtMatmulHeuristicResult_t>& cands, TuneResult* r) {
  const float inf = std::numeric_limits<float>::infinity();
  const size_t nc = cands.size();
  r->us.assign(nc, inf);
  std::vector<bool> ok(nc, false);
  std::vector<cudaGraphExec_t> execs(nc, nullptr);
  cudaStream_t ts = nullptr;
  cudaEvent_t ready = nullptr, start = nullptr, stop = nullptr;
  cudaError_t err = cudaStreamCreateWithFlags(&ts, cudaStreamNonBlocking);
  if (err == cudaSuccess) err = cudaEventCreateWithFlags(&ready, cudaEventDisableTiming);
  if (err == cudaSuccess) err = cudaEventCreate(&start);
  if (err == cudaSuccess) err = cudaEventCreate(&stop);
  if (err == cudaSuccess) err = cudaEventRecord(ready, l.stream);
  if (err == cudaSuccess) err = cudaStreamWaitEvent(ts, ready, 0);
  Launch lt = l;
  lt.stream = ts;
  for (size_t i = 0; i < nc && err == cudaSuccess; ++i) {
    if (lt.Run(cands[i].algo) != CUBLAS_STATUS_SUCCESS) continue;  // warm-up, and does it run at all
    if ((err = cudaStreamBeginCapture(ts, cudaStreamCaptureModeThreadLocal)) != cudaSuccess) break;
    bool launched = true;
    for (int rep = 0; rep < kTunedLinearTimedReps && launched; ++rep) {
      launched = lt.Run(cands[i].algo) == CUBLAS_STATUS_SUCCESS;
    }
    cudaGraph_t graph = nullptr;
    const cudaError_t end = cudaStreamEndCapture(ts, &graph);
    if (end == cudaSuccess && launched && graph != nullptr &&
        cudaGraphInstantiate(&execs[i], graph, 0) == cudaSuccess) {
      ok[i] = true;
    } else {
      cudaGetLastError();  // a candidate that cannot be captured is skipped, not fatal
      execs[i] = nullptr;
    }
    if (graph) cudaGraphDestroy(graph);
  }
  for (size_t i = 0; i < nc && err == cudaSuccess; ++i) {
    if (ok[i]) err = cudaGraphLaunch(execs[i], ts);  // uploads the graph; untimed
  }
  for (int round = 0; round < kTimingRounds && err == cudaSuccess; ++round) {
    for (size_t i = 0; i < nc && err == cudaSuccess; ++i) {
      if (!ok[i]) continue;
      err = cudaEventRecord(start, ts);
      if (err == cudaSuccess) err = cudaGraphLaunch(execs[i], ts);
      if (err == cudaSuccess) err = cudaEventRecord(stop, ts);
      if (err == cudaSuccess) err = cudaEventSynchronize(stop);
      float ms = 0;
      if (err == cudaSuccess) err = cudaEventElapsedTime(&ms, start, stop);
      if (err == cudaSuccess) r->us[i] = std::min(r->us[i], 1000.f * ms / kTunedLinearTimedReps);
    }
  }
  if (ts) {
    const cudaError_t sync = cudaStreamSynchronize(ts);
    if (err == cudaSuccess) err = sync;
  }
  for (cudaGraphExec_t e : execs) {
    if (e) cudaGraphExecDestroy(e);
  }
  if (stop) cudaEventDestroy(stop);
  if (start) cudaEventDestroy(start);
  if (ready) cudaEventDestroy(ready);
  if (ts) cudaStreamDestroy(ts);
  if (err != cudaSuccess) return Fail(err, std::string("timing cuBLASLt candidates: ") + cudaGetErrorString(err));
  for (size_t i = 0; i < nc; ++i) {
    if (ok[i] && r->us[i] < inf && (r->best < 0 || r->us[i] < r->us[static_cast<size_t>(r->best)])) {
      r->best = static_cast<int>(i);
    }
  }
  if (r->best < 0) return Fail(cudaErrorNotSupported, "every cuBLASLt candidate failed to run");
  if (ok[0] && r->us[0] <= r->us[static_cast<size_t>(r->best)] * kKeepFirstMargin) r->best = 0;
  return cudaSuccess;
}

cudaError_t RunChosen(const Launch& l, const cublasLtMatmulAlgo_t& algo, const TunedLinearChoice& info) {
  const cublasStatus_t st = l.Run(algo);
  if (st != CUBLAS_STATUS_SUCCESS) return Fail(cudaErrorUnknown, CublasMessage("cublasLtMatmul", st));
  t_last_choice = info;
  return cudaSuccess;
}

std::string AlgoSummary(const cublasLtMatmulAlgo_t& a) {
  // The attributes are 16- or 32-bit and the size passed must match: ask for it first; a zeroed
  // 8-byte buffer then holds any of them (little-endian).
  auto get = [&](cublasLtMatmulAlgoConfigAttributes_t attr) -> long long {
    uint64_t buf = 0;
    size_t size = 0;
    if (cublasLtMatmulAlgoConfigGetAttribute(&a, attr, nullptr, 0, &size) != CUBLAS_STATUS_SUCCESS || size == 0 ||
        size > sizeof buf ||
        cublasLtMatmulAlgoConfigGetAttribute(&a, attr, &buf, size, &size) != CUBLAS_STATUS_SUCCESS) {
      return -1;
    }
    return static_cast<long long>(buf);
  };
  return "id=" + std::to_string(get(CUBLASLT_ALGO_CONFIG_ID)) +
         " tile=" + std::to_string(get(CUBLASLT_ALGO_CONFIG_TILE_ID)) +
         " splitk=" + std::to_string(get(CUBLASLT_ALGO_CONFIG_SPLITK_NUM)) +
         " stages=" + std::to_string(get(CUBLASLT_ALGO_CONFIG_STAGES_ID)) +
         " cluster=" + std::to_string(get(CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID));
}

}  // namespace

cudaError_t LaunchTunedLinear(ElemType t, const void* x, const void* w, const void* bias, const void* residual,
                              void* y, int64_t m, int64_t n, int64_t k, void* workspace, size_t workspace_bytes,
                              cudaStream_t stream) {
  t_last_error.clear();
  if (m < 1 || n < 1 || k < 1) return Fail(cudaErrorInvalidValue, "m, n and k must be >= 1");
  if (!x || !w || !y) return Fail(cudaErrorInvalidValue, "x, w and y must not be null");
  int64_t align = std::min({AlignmentOf(x), AlignmentOf(w), AlignmentOf(y)});
  if (residual) align = std::min(align, AlignmentOf(residual));
  if (align < 16 || (bias && AlignmentOf(bias) < 16)) {
    return Fail(cudaErrorInvalidValue, "pointers must be 16-byte aligned");
  }
  if (workspace && workspace_bytes > 0 && AlignmentOf(workspace) < 256) {
    return Fail(cudaErrorInvalidValue, "the workspace must be 256-byte aligned");
  }
  if (!workspace) workspace_bytes = 0;
  const size_t es = 2, y_bytes = static_cast<size_t>(m * n) * es;
  if (Overlaps(y, y_bytes, x, static_cast<size_t>(m * k) * es) ||
      Overlaps(y, y_bytes, w, static_cast<size_t>(n * k) * es) ||
      Overlaps(y, y_bytes, residual, y_bytes) || Overlaps(y, y_bytes, bias, static_cast<size_t>(n) * es)) {
    return Fail(cudaErrorInvalidValue, "y overlaps an input (y == residual is not supported)");
  }

  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) return Fail(err, std::string("cudaGetDevice: ") + cudaGetErrorString(err));
  cublasLtHandle_t handle = nullptr;
  if ((err = HandleFor(device, &handle)) != cudaSuccess) return err;
  Problem p;
  if ((err = p.Init(t, m, n, k, bias)) != cudaSuccess) return err;
  const Launch l{handle, &p, x, w, residual, y, workspace, workspace_bytes, stream};
  const MemKey key{device, GemmTuneKey{GpuName(device), t, m, n, k, bias != nullptr, residual != nullptr, align}};
  State& s = GetState();

  // 1. A choice made earlier in this process; 2. the cache file.
  std::optional<Cached> hit;
  std::optional<std::array<uint64_t, 8>> from_file;
  std::string path;
  bool cached_needs_more_workspace = false;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.choices.find(key);
    if (it != s.choices.end()) {
      if (it->second.workspace <= workspace_bytes) hit = it->second;
      else cached_needs_more_workspace = true;
    } else {
      EnsureFileLoadedLocked(s);
      auto f = s.file_entries.find(key.key);
      if (f != s.file_entries.end()) from_file = f->second;
    }
    path = CachePathLocked(s);
  }
  if (hit) {
    hit->info.source = TunedLinearSource::kCache;
    return RunChosen(l, hit->algo, hit->info);
  }
  if (from_file) {
    const cublasLtMatmulAlgo_t algo = Algo(*from_file);
    const std::optional<size_t> need = l.Check(algo);
    if (need && *need <= workspace_bytes) {
      Cached c{algo, *need, {}};
      SetChoice(&c.info, TunedLinearSource::kFile, algo);
      {
        std::lock_guard<std::mutex> lock(s.mu);
        c = s.choices.try_emplace(key, c).first->second;
      }
      return RunChosen(l, c.algo, c.info);
    }
    std::fprintf(stderr,
                 "distri: GEMM tuning cache %s: the line for %s m=%lld n=%lld k=%lld is not usable here "
                 "(cublasLtMatmulAlgoCheck %s); choosing again\n",
                 path.c_str(), key.key.gpu.c_str(), static_cast<long long>(m), static_cast<long long>(n),
                 static_cast<long long>(k), need ? "needs more workspace" : "rejects it");
    std::lock_guard<std::mutex> lock(s.mu);
    s.file_entries.erase(key.key);
  }

  // 3. No choice yet: the heuristic's candidates.
  std::vector<cublasLtMatmulHeuristicResult_t> cands;
  if ((err = Heuristic(l, align, &cands)) != cudaSuccess) return err;
  if (cached_needs_more_workspace || IsCapturing(stream)) {
    TunedLinearChoice info;
    SetChoice(&info, TunedLinearSource::kHeuristicUncached, cands[0].algo);
    return RunChosen(l, cands[0].algo, info);
  }

  // 4. Time them.
  TuneResult r;
  if ((err = Tune(l, cands, &r)) != cudaSuccess) return err;
  const auto& best = cands[static_cast<size_t>(r.best)];
  Cached c{best.algo, best.workspaceSize, {}};
  SetChoice(&c.info, TunedLinearSource::kTuned, best.algo);
  c.info.time_us = r.us[static_cast<size_t>(r.best)];
  c.info.heuristic_us = r.us[0];
  c.info.candidates = static_cast<int>(cands.size());
  std::vector<GemmTuneEntry> all;
  if (!path.empty()) {
    char comment[96];
    std::snprintf(comment, sizeof comment, "us=%.2f heuristic_us=%.2f candidates=%d", c.info.time_us,
                  c.info.heuristic_us, c.info.candidates);
    const GemmTuneEntry mine{key.key, Words(best.algo)};
    const GemmTuneEntry winner = AppendGemmTuneEntry(path, CublasLtVersion(), mine, comment, &all);
    if (winner.algo != mine.algo) {
      // Another process wrote this key first: use its algorithm, as every reader of the file will.
      const cublasLtMatmulAlgo_t algo = Algo(winner.algo);
      const std::optional<size_t> need = l.Check(algo);
      if (need && *need <= workspace_bytes) {
        c = Cached{algo, *need, {}};
        SetChoice(&c.info, TunedLinearSource::kFile, algo);
      }
    }
  }
  {
    std::lock_guard<std::mutex> lock(s.mu);
    MergeFileEntriesLocked(s, all);
    c = s.choices.try_emplace(key, c).first->second;  // a thread that finished first wins
  }
  return RunChosen(l, c.algo, c.info);
}

const char* TunedLinearLastError() { return t_last_error.c_str(); }

TunedLinearChoice LastTunedLinearChoice() { return t_last_choice; }

size_t TunedLinearCacheSize() {
  State& s = GetState();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.choices.size();
}

std::string TunedLinearReport() {
  State& s = GetState();
  std::lock_guard<std::mutex> lock(s.mu);
  std::string out;
  for (const auto& [key, c] : s.choices) {
    const GemmTuneKey& k = key.key;
    char line[320];
    const char* src = c.info.source == TunedLinearSource::kFile ? "file" : "tuned";
    std::snprintf(line, sizeof line,
                  "gemm dev%d %s m=%lld n=%lld k=%lld bias=%d res=%d align=%lld: %s %.2f us (heuristic's first "
                  "%.2f us, %d candidates) %s\n",
                  key.device, k.type == ElemType::kHalf ? "f16" : "bf16", static_cast<long long>(k.m),
                  static_cast<long long>(k.n), static_cast<long long>(k.k), k.bias ? 1 : 0, k.residual ? 1 : 0,
                  static_cast<long long>(k.align), src, c.info.time_us, c.info.heuristic_us, c.info.candidates,
                  AlgoSummary(c.algo).c_str());
    out += line;
  }
  return out;
}

void ClearTunedLinearCache() {
  State& s = GetState();
  std::lock_guard<std::mutex> lock(s.mu);
  s.choices.clear();
  s.file_entries.clear();
  s.file_loaded = false;
}

void SetTunedLinearCacheFile(const char* path) {
  State& s = GetState();
  std::lock_guard<std::mutex> lock(s.mu);
  s.path_overridden = path != nullptr;
  s.path_override = path ? path : "";
}

}  // namespace distri::kernels

// `chatrec bench blas`: what the BLAS kernels OpenBLAS runs cost chatrec. For each core type asked
// for, a child process is started with $OPENBLAS_CORETYPE set (the library reads it only when it
// loads) and measures, in the same run: f32 GEMM (sgemm, square), and FAISS flat inner-product
// search of a query batch (the path that goes through sgemm) and of single queries (FAISS's own
// SIMD scan, no BLAS), so the ratio between kernels is measured side by side.
#include <faiss/IndexFlat.h>
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <random>
#include <sstream>
#include <vector>

#include "cli/command.h"
#include "common/blas.h"

extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n,
                       const int* k, const float* alpha, const float* a, const int* lda,
                       const float* b, const int* ldb, const float* beta, float* c, const int* ldc);

namespace chatrec::cli {
namespace {

struct BenchBlasArgs {
  std::string cores = "auto,Prescott";
  int gemm_size = 1024;
  int items = 100000;
  int dim = 384;
  int queries = 1000;
  int repetitions = 3;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

template <typename F>
double best_of(int repetitions, F&& f) {
  double best = 1e300;
  for (int r = 0; r < repetitions; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, seconds_since(t0));
  }
  return best;
}

// Runs in the child: one line "core gemm_gflops batch_qps single_qps".
void measure(const BenchBlasArgs& a) {
  const common::BlasInfo info = common::blas_info();
  std::mt19937 rng(2023);
  std::normal_distribution<float> normal;
  const int n = a.gemm_size;
  std::vector<float> A(static_cast<std::size_t>(n) * n), B(A.size()), C(A.size());
  for (float& v : A) v = normal(rng);
  for (float& v : B) v = normal(rng);
  const float one = 1.0f, zero = 0.0f;
  const double gemm_s = best_of(a.repetitions, [&] {
    sgemm_("N", "N", &n, &n, &n, &one, A.data(), &n, B.data(), &n, &zero, C.data(), &n);
  });
  const double gflops = 2.0 * n * static_cast<double>(n) * n / gemm_s / 1e9;

  faiss::IndexFlatIP index(a.dim);
  std::vector<float> base(static_cast<std::size_t>(a.items) * a.dim);
  for (float& v : base) v = normal(rng);
  index.add(a.items, base.data());
  std::vector<float> queries(static_cast<std::size_t>(a.queries) * a.dim);
  for (float& v : queries) v = normal(rng);
  const int k = 20;
  std::vector<float> distances(static_cast<std::size_t>(a.queries) * k);
  std::vector<faiss::Index::idx_t> labels(distances.size());
  const double batch_s = best_of(a.repetitions, [&] {
    index.search(a.queries, queries.data(), k, distances.data(), labels.data());
  });
  const int singles = std::min(a.queries, 100);
  const double single_s = best_of(a.repetitions, [&] {
    for (int q = 0; q < singles; ++q)
      index.search(1, queries.data() + static_cast<std::size_t>(q) * a.dim, k, distances.data(),
                   labels.data());
  });
  std::cout << fmt::format("{} {:.3f} {:.3f} {:.3f}\n", info.core.empty() ? "-" : info.core, gflops,
                           a.queries / batch_s, singles / single_s);
}

struct Row {
  std::string asked, core;
  double gflops = 0, batch_qps = 0, single_qps = 0;
};

// Starts this program again as `bench blas --child` with the core type in the environment and
// reads its line back.
Row run_child(const BenchBlasArgs& a, const std::string& core) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("bench blas: pipe failed");
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("bench blas: fork failed");
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    if (core == "auto") {
      unsetenv("OPENBLAS_CORETYPE");  // the child chooses as every chatrec command does
    } else {
      setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
    }
    unsetenv("CHATREC_BLAS_LIBRARY_CORE");
    const std::string args[] = {"chatrec",       "bench",
                                "blas",          "--child",
                                "--gemm-size",   std::to_string(a.gemm_size),
                                "--items",       std::to_string(a.items),
                                "--dim",         std::to_string(a.dim),
                                "--queries",     std::to_string(a.queries),
                                "--repetitions", std::to_string(a.repetitions)};
    std::vector<char*> argv;
    for (const std::string& s : args) argv.push_back(const_cast<char*>(s.c_str()));
    argv.push_back(nullptr);
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  char buf[256];
  for (ssize_t got; (got = read(fds[0], buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<std::size_t>(got));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("bench blas: the measurement for core '" + core + "' failed");
  Row r;
  r.asked = core;
  std::istringstream in(out);
  if (!(in >> r.core >> r.gflops >> r.batch_qps >> r.single_qps))
    throw std::runtime_error("bench blas: unreadable measurement for core '" + core + "': " + out);
  return r;
}

void run_bench(const BenchBlasArgs& a) {
  std::cout << common::blas_info().describe() << "\n";
  const common::VectorSupport cpu = common::vector_support();
  std::cout << fmt::format("CPU vector support: AVX2+FMA {}, AVX-512 (F/CD/BW/DQ/VL) {}\n",
                           cpu.avx2_fma ? "yes" : "no", cpu.avx512 ? "yes" : "no");
  std::cout << fmt::format(
      "sgemm {0}x{0}x{0}; FAISS IndexFlatIP {1} x {2}, top-20 of {3} queries at once (sgemm) and "
      "of single queries (no BLAS); best of {4}, threads: OpenBLAS/OpenMP defaults\n\n",
      a.gemm_size, a.items, a.dim, a.queries, a.repetitions);
  std::vector<Row> rows;
  std::stringstream list(a.cores);
  for (std::string core; std::getline(list, core, ',');)
    if (!core.empty()) rows.push_back(run_child(a, core));
  if (rows.empty()) throw std::runtime_error("bench blas: --cores lists no core type");
  std::cout
      << "| asked | core run | sgemm GFLOP/s | batch search q/s | single search q/s | sgemm vs "
         "first |\n|---|---|---|---|---|---|\n";
  for (const Row& r : rows)
    std::cout << fmt::format("| {} | {} | {:.1f} | {:.0f} | {:.0f} | {:.2f} |\n", r.asked, r.core,
                             r.gflops, r.batch_qps, r.single_qps, r.gflops / rows.front().gflops);
}

static Registration bench_blas_registration(95, [](CLI::App& root) {
  CLI::App& bench = group(root, "bench", "Benchmarks");
  auto args = std::make_shared<BenchBlasArgs>();
  auto child = std::make_shared<bool>(false);
  auto* cmd = bench.add_subcommand(
      "blas", "Which OpenBLAS kernels run, and what each costs GEMM and FAISS search");
  cmd->add_option("--cores", args->cores,
                  "Comma-separated OpenBLAS core types to measure side by side ('auto': chatrec's "
                  "choice for this CPU)")
      ->capture_default_str();
  cmd->add_option("--gemm-size", args->gemm_size, "Square sgemm size")->capture_default_str();
  cmd->add_option("--items", args->items, "Vectors in the FAISS index")->capture_default_str();
  cmd->add_option("--dim", args->dim, "Vector dimension")->capture_default_str();
  cmd->add_option("--queries", args->queries, "Queries per batch search")->capture_default_str();
  cmd->add_option("--repetitions", args->repetitions, "Repetitions (best is kept)")
      ->capture_default_str();
  cmd->add_flag("--child", *child, "Measure in this process only (used by the benchmark itself)")
      ->group("");
  cmd->callback([args, child] {
    if (*child) {
      measure(*args);
    } else {
      run_bench(*args);
    }
  });
});

}  // namespace
}  // namespace chatrec::cli

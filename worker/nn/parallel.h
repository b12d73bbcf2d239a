// Deterministic data parallelism on the OpenMP thread team that oneDNN also uses.
#ifndef MUPPET_WORKER_NN_PARALLEL_H_
#define MUPPET_WORKER_NN_PARALLEL_H_

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace muppet {

// Work (in element operations) below which a loop runs on the calling thread: a parallel region
// costs a few microseconds, more than a few thousand cheap operations.
inline constexpr int64_t kMinWorkPerThread = 2048;

// The threads a loop of n iterations of `work` operations each uses: a function of the sizes and
// the thread setting only, so chunking (and every reduction order) never depends on timing.
inline int ThreadsFor(int64_t n, int64_t work = 1) {
  return static_cast<int>(std::clamp<int64_t>(n * work / kMinWorkPerThread, 1,
                                              std::min<int64_t>(n, omp_get_max_threads())));
}

// Calls body(begin, end) on contiguous chunks of [0, n), one chunk per thread; `work` is the
// rough cost of one iteration in element operations.
template <typename Body>
void ParallelFor(int64_t n, Body body, int64_t work = 1) {
  if (n <= 0) return;
  const int threads = ThreadsFor(n, work);
  if (threads == 1) {
    body(0, n);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    const int64_t begin = n * t / threads;
    const int64_t end = n * (t + 1) / threads;
    body(begin, end);
  }
}

// ParallelFor with an accumulator per thread, each a copy of `init`: body(begin, end, acc) works
// on its chunk into acc. Returns the accumulators in thread order (chunk order). Must not run
// inside another OpenMP region (threads are told apart by omp_get_thread_num()).
template <typename T, typename Body>
std::vector<T> ParallelForEachThread(int64_t n, int64_t work, const T& init, Body body) {
  std::vector<T> partial(ThreadsFor(n, work), init);
  ParallelFor(
      n, [&](int64_t begin, int64_t end) { body(begin, end, partial[omp_get_thread_num()]); },
      work);
  return partial;
}

// Sums `width` doubles over rows [0, n): chunk_fn(begin, end, acc) adds rows [begin, end) into
// acc. Each thread reduces its own contiguous chunk and the chunks are added in thread order, so
// the result depends only on the thread count, never on timing.
template <typename ChunkFn>
std::vector<double> ReduceChunks(int64_t n, int64_t width, ChunkFn chunk_fn) {
  const std::vector<std::vector<double>> partial =
      ParallelForEachThread(n, width, std::vector<double>(width, 0.0),
                            [&](int64_t begin, int64_t end, std::vector<double>& acc) {
                              chunk_fn(begin, end, acc.data());
                            });
  std::vector<double> total(width, 0.0);
  for (const auto& p : partial) {
    for (int64_t j = 0; j < width; ++j) total[j] += p[j];
  }
  return total;
}

// ReduceChunks one row at a time: row_fn(row, acc) adds its row into acc.
template <typename RowFn>
std::vector<double> ReduceRows(int64_t n, int64_t width, RowFn row_fn) {
  return ReduceChunks(n, width, [&](int64_t begin, int64_t end, double* acc) {
    for (int64_t row = begin; row < end; ++row) row_fn(row, acc);
  });
}

}  // namespace muppet

#endif  // MUPPET_WORKER_NN_PARALLEL_H_

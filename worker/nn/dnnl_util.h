// Shared oneDNN state for the engine's layers: one CPU engine and stream per process, and
// helpers to describe channels-last tensors to oneDNN.
#ifndef MUPPET_WORKER_NN_DNNL_UTIL_H_
#define MUPPET_WORKER_NN_DNNL_UTIL_H_

#include <unordered_map>

#include "oneapi/dnnl/dnnl.hpp"
#include "worker/tensor/tensor.h"

namespace muppet::dnnl_util {

// The process-wide CPU engine.
dnnl::engine& Engine();

// The process-wide in-order stream (primitives run on the calling thread's OpenMP team).
dnnl::stream& Stream();

// A descriptor of `shape` in the engine's layout: channels-last for rank 4 (logical NCHW dims,
// nhwc memory), row-major for ranks 1 and 2.
dnnl::memory::desc Desc(const Shape& shape);

// Wraps `tensor`'s memory (no copy) with descriptor `desc`.
dnnl::memory Wrap(const dnnl::memory::desc& desc, const Tensor& tensor);

// Returns memory of `desc`: `user` itself when the layouts match, else a new buffer (to be filled
// or read back with CopyMemory). Used to keep parameters in plain layout while primitives use
// their preferred blocked layouts.
dnnl::memory MemoryLike(const dnnl::memory& user, const dnnl::memory::desc& desc);

// Copies `from` into `to` (a reorder between layouts); nothing when they are the same memory.
void CopyMemory(const dnnl::memory& from, const dnnl::memory& to);

}  // namespace muppet::dnnl_util

#endif  // MUPPET_WORKER_NN_DNNL_UTIL_H_

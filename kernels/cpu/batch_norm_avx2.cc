// batch_norm.h's loops for AVX2 (batch_norm_impl.h under this file's target).
#include <algorithm>
#include <bit>
#include <cstdint>
#include <type_traits>

#include "kernels/cpu/batch_norm.h"
#include "kernels/cpu/relu_grad.h"

#pragma GCC push_options
#pragma GCC target("avx2")

#include "kernels/cpu/batch_norm_impl.h"

namespace muppet::kernels::internal {
MUPPET_BATCH_NORM_DEFINE(Avx2)
}  // namespace muppet::kernels::internal

#pragma GCC pop_options

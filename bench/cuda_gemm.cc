// The int8 tensor-core GEMM (kernels/cuda/gemm_s8.h) and the byte-split int16 GEMM of the 14-16-bit
// levels (gemm_s16.h) against cuBLASLt's bf16 GEMM (FP32 accumulation, bf16 out) on the same
// device, in one run. All are validated first on 512 x 512 x 512: int8 and int16 exactly against
// an int64 CPU reference, bf16 within bf16's rounding of a float reference. Then each is timed at
// 4096^3 and 8192^3 (best of 10, CUDA events); one JSON line per size with the throughputs and
// the ratios (goal at 8192^3: int8 at least 1.7x bf16).
//   bazel run -c opt //bench:cuda_gemm
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/cuda_harness.h"
#include "kernels/cuda/cublaslt.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/gemm_s16.h"
#include "kernels/cuda/gemm_s8.h"

namespace muppet::bench {
namespace {

// C (m x n, bf16, row-major) = A (m x k) * B (n x k)^T in bf16 with FP32 accumulation: the same
// TN arrangement as the int8 GEMM, through the same cuBLASLt plumbing (kernels/cuda/cublaslt.h).
class Bf16Gemm {
 public:
  Bf16Gemm() : lt_(Check(cuda::CublasLt::Create(), "CublasLt::Create")) {}

  void Run(int64_t m, int64_t n, int64_t k, const __nv_bfloat16* a, const __nv_bfloat16* b,
           __nv_bfloat16* c) {
    const float alpha = 1, beta = 0;
    CheckOk(lt_.MatmulTN({.operands = CUDA_R_16BF,
                          .output = CUDA_R_16BF,
                          .compute = CUBLAS_COMPUTE_32F,
                          .scale = CUDA_R_32F},
                         {.m = m, .n = n, .k = k}, &alpha, &beta, a, k, b, k, c, nullptr),
            "cublasLtMatmul(bf16)");
  }

 private:
  cuda::CublasLt lt_;
};

template <typename Code>
std::vector<Code> Codes(int64_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> code(std::numeric_limits<Code>::min(),
                                          std::numeric_limits<Code>::max());
  std::vector<Code> v(n);
  for (Code& x : v) x = static_cast<Code>(code(rng));
  return v;
}

// The int16 GEMM on 512^3 of full-range codes against the CPU, exactly.
void ValidateInt16(cuda::GemmS16& int16) {
  constexpr int64_t kN = 512;
  std::mt19937 rng(2);
  const std::vector<int16_t> a = Codes<int16_t>(kN * kN, rng), b = Codes<int16_t>(kN * kN, rng);
  auto da = Check(cuda::DeviceBuffer<int16_t>::CopyOf(a), "int16 a");
  auto db = Check(cuda::DeviceBuffer<int16_t>::CopyOf(b), "int16 b");
  auto dc = Check(cuda::DeviceBuffer<int64_t>::Allocate(kN * kN), "int16 c");
  CheckOk(int16.Run({kN, kN, kN}, da.data(), db.data(), dc.data(), nullptr), "GemmS16");
  const std::vector<int64_t> c = Check(dc.ToHost(), "int16 c to host");
  for (int64_t i = 0; i < kN; ++i) {
    for (int64_t j = 0; j < kN; ++j) {
      int64_t sum = 0;
      for (int64_t p = 0; p < kN; ++p) sum += int64_t{a[i * kN + p]} * b[j * kN + p];
      if (c[i * kN + j] != sum) Fail(absl::StrCat("int16 GEMM: C[", i, ",", j, "] is wrong"));
    }
  }
}

// The int8 and bf16 GEMMs on 512^3 against the CPU.
void Validate(cuda::GemmS8& int8, Bf16Gemm& bf16) {
  constexpr int64_t kN = 512;
  std::mt19937 rng(1);
  const std::vector<int8_t> a = Codes<int8_t>(kN * kN, rng), b = Codes<int8_t>(kN * kN, rng);
  auto da = Check(cuda::DeviceBuffer<int8_t>::CopyOf(a), "a");
  auto db = Check(cuda::DeviceBuffer<int8_t>::CopyOf(b), "b");
  auto dc = Check(cuda::DeviceBuffer<int32_t>::Allocate(kN * kN), "c");
  CheckOk(int8.Run({kN, kN, kN}, da.data(), db.data(), dc.data(), nullptr), "GemmS8");
  const std::vector<int32_t> c = Check(dc.ToHost(), "c to host");
  std::vector<__nv_bfloat16> ha(kN * kN), hb(kN * kN);
  for (int64_t i = 0; i < kN * kN; ++i) {
    ha[i] = __float2bfloat16(a[i] / 128.0f);  // Exact in bf16: 8 significant bits.
    hb[i] = __float2bfloat16(b[i] / 128.0f);
  }
  auto fa = Check(cuda::DeviceBuffer<__nv_bfloat16>::CopyOf(ha), "bf16 a");
  auto fb = Check(cuda::DeviceBuffer<__nv_bfloat16>::CopyOf(hb), "bf16 b");
  auto fc = Check(cuda::DeviceBuffer<__nv_bfloat16>::Allocate(kN * kN), "bf16 c");
  bf16.Run(kN, kN, kN, fa.data(), fb.data(), fc.data());
  CheckCuda(cudaDeviceSynchronize(), "bf16 GEMM");
  const std::vector<__nv_bfloat16> fch = Check(fc.ToHost(), "bf16 c to host");
  for (int64_t i = 0; i < kN; ++i) {
    for (int64_t j = 0; j < kN; ++j) {
      int64_t sum = 0;
      for (int64_t p = 0; p < kN; ++p) sum += int64_t{a[i * kN + p]} * b[j * kN + p];
      if (c[i * kN + j] != sum) Fail(absl::StrCat("int8 GEMM: C[", i, ",", j, "] is wrong"));
      const double exact = sum / 16384.0, got = __bfloat162float(fch[i * kN + j]);
      if (std::abs(got - exact) > std::abs(exact) / 128 + 1e-2) {
        Fail(absl::StrCat("bf16 GEMM: C[", i, ",", j, "] = ", got, ", expected ", exact));
      }
    }
  }
}

void Time(int64_t n, cuda::GemmS8& int8, cuda::GemmS16& int16, Bf16Gemm& bf16) {
  auto a = Check(cuda::DeviceBuffer<int8_t>::Allocate(n * n), "a");
  auto wa = Check(cuda::DeviceBuffer<int16_t>::Allocate(n * n), "int16 a");
  auto wb = Check(cuda::DeviceBuffer<int16_t>::Allocate(n * n), "int16 b");
  auto wc = Check(cuda::DeviceBuffer<int64_t>::Allocate(n * n), "int16 c");
  auto b = Check(cuda::DeviceBuffer<int8_t>::Allocate(n * n), "b");
  auto c = Check(cuda::DeviceBuffer<int32_t>::Allocate(n * n), "c");
  auto fa = Check(cuda::DeviceBuffer<__nv_bfloat16>::Allocate(n * n), "bf16 a");
  auto fb = Check(cuda::DeviceBuffer<__nv_bfloat16>::Allocate(n * n), "bf16 b");
  auto fc = Check(cuda::DeviceBuffer<__nv_bfloat16>::Allocate(n * n), "bf16 c");
  for (auto* p : {static_cast<void*>(a.data()), static_cast<void*>(b.data())}) {
    CheckCuda(cudaMemset(p, 3, n * n), "cudaMemset");
  }
  CheckCuda(cudaMemset(wa.data(), 3, n * n * 2), "cudaMemset");
  CheckCuda(cudaMemset(wb.data(), 3, n * n * 2), "cudaMemset");
  CheckCuda(cudaMemset(fa.data(), 0, n * n * 2), "cudaMemset");
  CheckCuda(cudaMemset(fb.data(), 0, n * n * 2), "cudaMemset");
  const double int8_seconds = BestDeviceSeconds([&] {
    CheckOk(int8.Run({n, n, n}, a.data(), b.data(), c.data(), nullptr), "GemmS8");
  });
  const double int16_seconds = BestDeviceSeconds([&] {
    CheckOk(int16.Run({n, n, n}, wa.data(), wb.data(), wc.data(), nullptr), "GemmS16");
  });
  const double bf16_seconds =
      BestDeviceSeconds([&] { bf16.Run(n, n, n, fa.data(), fb.data(), fc.data()); });
  const double ops = 2.0 * n * n * n;
  JsonLine()
      .Add("bench", "cuda_gemm")
      .Add("m_n_k", static_cast<long long>(n))
      .Add("int8_tops", ops / int8_seconds / 1e12)
      .Add("bf16_tflops", ops / bf16_seconds / 1e12)
      .Add("int8_vs_bf16", bf16_seconds / int8_seconds)
      .Add("int16_split_tops", ops / int16_seconds / 1e12)
      .Add("int16_split_vs_bf16", bf16_seconds / int16_seconds)
      .Add("validated", true)
      .Print();
}

int Main() {
  PrintGpu("cuda_gemm");
  cuda::GemmS8 int8 = Check(cuda::GemmS8::Create(), "GemmS8::Create");
  cuda::GemmS16 int16 = Check(cuda::GemmS16::Create(), "GemmS16::Create");
  Bf16Gemm bf16;
  Validate(int8, bf16);
  ValidateInt16(int16);
  for (int64_t n : {4096, 8192}) Time(n, int8, int16, bf16);
  return 0;
}

}  // namespace
}  // namespace muppet::bench

int main() { return muppet::bench::Main(); }

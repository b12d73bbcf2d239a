// MUPPET_HOST_DEVICE marks a function that both the CPU and the CUDA kernels call: under nvcc it
// is __host__ __device__, elsewhere plain C++, so the CPU tests check the arithmetic the GPU runs.
#ifndef MUPPET_KERNELS_COMMON_HOST_DEVICE_H_
#define MUPPET_KERNELS_COMMON_HOST_DEVICE_H_

#if defined(__CUDACC__)
#define MUPPET_HOST_DEVICE __host__ __device__
#else
#define MUPPET_HOST_DEVICE
#endif

#endif  // MUPPET_KERNELS_COMMON_HOST_DEVICE_H_

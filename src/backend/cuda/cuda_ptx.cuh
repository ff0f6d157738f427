/*
 * cuda_ptx.cuh — the sm_80+ PTX instructions the tiled products use, one
 * wrapper each (cuda_matmul.cu's f16 GEMM, cuda_gemm.cu, cuda_mmq.cu).
 * cuda_flash_attn.cu keeps its own, because tests/cuda/fa_emu.cpp replaces
 * them with CPU versions.
 *
 *   ptx_cp_async16(smem, gmem, src_bytes)   16 bytes global -> shared
 *       without passing through registers; bytes past src_bytes (0 or 16)
 *       are zero-filled, so a row past the end becomes zeros (gmem must
 *       still be a valid address).
 *   ptx_cp_async_commit()                   closes the group of copies issued
 *   ptx_cp_async_wait_all()                 waits for every group
 *   ptx_ldmatrix_x4(r, p)                   four 8x8 b16 tiles from shared
 *       memory into the mma fragment layout (lane l gives row l's address)
 */
#ifndef LARDER_BACKEND_CUDA_CUDA_PTX_CUH
#define LARDER_BACKEND_CUDA_CUDA_PTX_CUH

#include <stdint.h>

__device__ __forceinline__ void ptx_cp_async16(void *smem, const void *gmem, int src_bytes) {
    unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(src_bytes));
}
__device__ __forceinline__ void ptx_cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void ptx_cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::); }

__device__ __forceinline__ void ptx_ldmatrix_x4(uint32_t *r, const void *p) {
    unsigned s = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
}

#endif

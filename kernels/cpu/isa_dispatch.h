// Run a piece of a CPU kernel compiled for AVX-512 when the CPU has it. The library is built for the
// x86-64 baseline (SSE2), so `omp simd` loops get 4 floats a vector; run_best(f) calls f through a
// copy of run_avx512 whose target is AVX-512 and which is `flatten`ed (f and everything it calls
// inline is compiled into it), so the same loops get 16 floats a vector.
// Results can differ from the SSE2 build in the last bits (AVX512F includes FMA, and `omp simd`
// reductions split into more lanes), but one machine always takes the same path, and the callers
// dispatch per row or per block, so a value never depends on the thread count.
// Do not put OpenMP parallel regions inside f: call run_best inside the parallel loop.
#pragma once

namespace nanorlhf::kernels::cpu {

#if defined(__x86_64__) && defined(__GNUC__)
inline bool cpu_has_avx512_bw_dq_vl() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                          __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw");
  return has;
}
template <class F>
__attribute__((target("avx512f,avx512vl,avx512dq,avx512bw"), flatten)) void run_avx512(const F &f) {
  f();
}
template <class F> inline void run_best(const F &f) {
  if (cpu_has_avx512_bw_dq_vl()) run_avx512(f);
  else f();
}
#else
template <class F> inline void run_best(const F &f) { f(); }
#endif

}  // namespace nanorlhf::kernels::cpu

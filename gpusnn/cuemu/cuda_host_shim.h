// cuda_host_shim.h -- run plain CUDA C kernels on the CPU (g++ -std=c++20); part of gpusnn.cuemu.
// Included BEFORE the user's .cu by the generated wrapper TU; never by nvcc/NVRTC.
// Execution model: blocks run one after another (optionally OpenMP-parallel over blocks);
// inside a block, threads run either
//   * sequentially (fast path; kernel must not call __syncthreads/warp ops), or
//   * as cooperative fibers (ucontext) on ONE OS thread: __syncthreads/__syncwarp/__shfl*
//     yield to a per-block scheduler, which releases a barrier when every live thread reached it.
#pragma once
#ifdef __CUDACC__
#error "cuda_host_shim.h must not be compiled by nvcc/NVRTC"
#endif
#include <cmath>
#include <math.h>      // libstdc++: brings float overloads (std::exp(float) ...) into ::
#include <cstdint>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>
#include <type_traits>
#include <ucontext.h>
#include <sys/mman.h>
#include <random>
#include <algorithm>
#include <numeric>

// ---------------- qualifiers ----------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __constant__
#define __managed__
#define __shared__ static thread_local      // one instance per OS thread == per running block
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
#define __grid_constant__
#define __CUEMU__ 1

// ---------------- vector types / builtins ----------------
struct uint3 { unsigned x, y, z; };
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(8) float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) int2 { int x, y; };
struct alignas(16) int4 { int x, y, z, w; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }

inline thread_local uint3 threadIdx, blockIdx;
inline thread_local dim3 blockDim, gridDim;
constexpr int warpSize = 32;

// ---------------- math ----------------
template <class A, class B> __forceinline__ auto min(A a, B b) { using T = std::common_type_t<A, B>; return (T)b < (T)a ? (T)b : (T)a; }
template <class A, class B> __forceinline__ auto max(A a, B b) { using T = std::common_type_t<A, B>; return (T)a < (T)b ? (T)b : (T)a; }
__forceinline__ float rsqrtf(float x) { return 1.0f / sqrtf(x); }
__forceinline__ double rsqrt(double x) { return 1.0 / sqrt(x); }
__forceinline__ float __expf(float x) { return expf(x); }
__forceinline__ float __logf(float x) { return logf(x); }
__forceinline__ float __powf(float a, float b) { return powf(a, b); }
__forceinline__ float __sinf(float x) { return sinf(x); }
__forceinline__ float __cosf(float x) { return cosf(x); }
__forceinline__ float __tanf(float x) { return tanf(x); }
__forceinline__ float __fdividef(float a, float b) { return a / b; }
__forceinline__ float __frcp_rn(float x) { return 1.0f / x; }
__forceinline__ float __fsqrt_rn(float x) { return sqrtf(x); }
__forceinline__ float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }
__forceinline__ float __fadd_rn(float a, float b) { return a + b; }
__forceinline__ float __fmul_rn(float a, float b) { return a * b; }
__forceinline__ float __fsub_rn(float a, float b) { return a - b; }
__forceinline__ float __fdiv_rn(float a, float b) { return a / b; }
__forceinline__ double __dadd_rn(double a, double b) { return a + b; }
__forceinline__ double __dmul_rn(double a, double b) { return a * b; }
__forceinline__ float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
__forceinline__ int __float2int_rn(float x) { return (int)lrintf(x); }
__forceinline__ int __float2int_rz(float x) { return (int)x; }
__forceinline__ int __float2int_rd(float x) { return (int)floorf(x); }
__forceinline__ int __float2int_ru(float x) { return (int)ceilf(x); }
__forceinline__ float __int2float_rn(int x) { return (float)x; }
template <class To, class From> __forceinline__ To cuemu_bitcast(From f) { static_assert(sizeof(To) == sizeof(From)); To t; std::memcpy(&t, &f, sizeof t); return t; }
__forceinline__ int __float_as_int(float x) { return cuemu_bitcast<int>(x); }
__forceinline__ unsigned __float_as_uint(float x) { return cuemu_bitcast<unsigned>(x); }
__forceinline__ float __int_as_float(int x) { return cuemu_bitcast<float>(x); }
__forceinline__ float __uint_as_float(unsigned x) { return cuemu_bitcast<float>(x); }
__forceinline__ long long __double_as_longlong(double x) { return cuemu_bitcast<long long>(x); }
__forceinline__ double __longlong_as_double(long long x) { return cuemu_bitcast<double>(x); }
__forceinline__ int __popc(unsigned x) { return __builtin_popcount(x); }
__forceinline__ int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
__forceinline__ int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
__forceinline__ int __clzll(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }
__forceinline__ int __ffs(int x) { return __builtin_ffs(x); }
__forceinline__ int __ffsll(long long x) { return __builtin_ffsll(x); }
__forceinline__ unsigned __brev(unsigned x) { x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1); x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2); x = ((x >> 4) & 0x0F0F0F0Fu) | ((x & 0x0F0F0F0Fu) << 4); return __builtin_bswap32(x); }
__forceinline__ int __mulhi(int a, int b) { return (int)(((long long)a * b) >> 32); }
__forceinline__ unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
template <class T> __forceinline__ T __ldg(const T* p) { return *p; }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }

// ---------------- atomics (real atomics: blocks may run on several OS threads) ----------------
#define CUEMU_AREF(p) std::atomic_ref<std::remove_reference_t<decltype(*p)>>(*p)
#define CUEMU_ATOMIC_RMW(NAME, OP, ...)                                                      \
    template <class T, class = std::enable_if_t<std::disjunction_v<std::is_same<T, __VA_ARGS__>...>>> \
    __forceinline__ T NAME(T* p, T v) { return CUEMU_AREF(p).OP(v, std::memory_order_relaxed); }
template <class T, class... Us> using cuemu_one_of = std::disjunction<std::is_same<T, Us>...>;
// only the overloads CUDA itself provides (so code that builds here but not under nvcc is rare;
// the NVRTC/nvcc compile check in CI catches the rest)
template <class T, std::enable_if_t<cuemu_one_of<T, int, unsigned, unsigned long long, float, double>::value, int> = 0>
__forceinline__ T atomicAdd(T* p, T v) { return CUEMU_AREF(p).fetch_add(v, std::memory_order_relaxed); }
template <class T, std::enable_if_t<cuemu_one_of<T, int, unsigned>::value, int> = 0>
__forceinline__ T atomicSub(T* p, T v) { return CUEMU_AREF(p).fetch_sub(v, std::memory_order_relaxed); }
template <class T, std::enable_if_t<cuemu_one_of<T, int, unsigned, unsigned long long, float>::value, int> = 0>
__forceinline__ T atomicExch(T* p, T v) { return CUEMU_AREF(p).exchange(v, std::memory_order_relaxed); }
template <class T, std::enable_if_t<cuemu_one_of<T, int, unsigned, unsigned long long, unsigned short>::value, int> = 0>
__forceinline__ T atomicCAS(T* p, T cmp, T val) { CUEMU_AREF(p).compare_exchange_strong(cmp, val, std::memory_order_relaxed); return cmp; }
#define CUEMU_MINMAX(NAME, CMP)                                                                  \
    template <class T, std::enable_if_t<cuemu_one_of<T, int, unsigned, long long, unsigned long long>::value, int> = 0> \
    __forceinline__ T NAME(T* p, T v) { auto a = CUEMU_AREF(p); T old = a.load(std::memory_order_relaxed); \
        while ((v CMP old) && !a.compare_exchange_weak(old, v, std::memory_order_relaxed)) {} return old; }
CUEMU_MINMAX(atomicMin, <)
CUEMU_MINMAX(atomicMax, >)
#define CUEMU_BITOP(NAME, OP)                                                                    \
    template <class T, std::enable_if_t<cuemu_one_of<T, int, unsigned, unsigned long long>::value, int> = 0> \
    __forceinline__ T NAME(T* p, T v) { return CUEMU_AREF(p).OP(v, std::memory_order_relaxed); }
CUEMU_BITOP(atomicAnd, fetch_and)
CUEMU_BITOP(atomicOr, fetch_or)
CUEMU_BITOP(atomicXor, fetch_xor)
__forceinline__ unsigned atomicInc(unsigned* p, unsigned lim) { auto a = CUEMU_AREF(p); unsigned o = a.load(); while (!a.compare_exchange_weak(o, o >= lim ? 0u : o + 1)) {} return o; }
__forceinline__ unsigned atomicDec(unsigned* p, unsigned lim) { auto a = CUEMU_AREF(p); unsigned o = a.load(); while (!a.compare_exchange_weak(o, (o == 0 || o > lim) ? lim : o - 1)) {} return o; }
#define atomicAdd_block atomicAdd
#define atomicAdd_system atomicAdd

// ---------------- block runtime: sequential or fibers ----------------
// ---- fiber context switch: tiny x86-64 asm switch (no syscalls); ucontext elsewhere / under ASan
#if defined(__x86_64__) && !defined(CUEMU_UCONTEXT) && !defined(__SANITIZE_ADDRESS__)
#define CUEMU_ASM_SWITCH 1
extern "C" void cuemu_switch(void** save_sp, void* load_sp);
__asm__(".text\n.globl cuemu_switch\n.hidden cuemu_switch\n.type cuemu_switch,@function\ncuemu_switch:\n"
        "pushq %rbp\npushq %rbx\npushq %r12\npushq %r13\npushq %r14\npushq %r15\n"
        "movq %rsp, (%rdi)\nmovq %rsi, %rsp\n"
        "popq %r15\npopq %r14\npopq %r13\npopq %r12\npopq %rbx\npopq %rbp\nret\n"
        ".size cuemu_switch,.-cuemu_switch\n");
#endif
namespace cuemu {
struct KernelError : std::runtime_error { using std::runtime_error::runtime_error; };
enum State : int { RUNNABLE, AT_BAR, AT_WARP, DONE, FAILED };
struct Fiber {
#ifdef CUEMU_ASM_SWITCH
    void* sp;
#else
    ucontext_t ctx;
#endif
    State st; const void* site; unsigned seq; };   // seq: # of warp exchanges done
struct Block {
    bool fibers = false;
    unsigned nthreads = 0, cur = 0;
#ifdef CUEMU_ASM_SWITCH
    void* sched_sp = nullptr;
#else
    ucontext_t sched;
#endif
    std::vector<Fiber> f;
    std::vector<char*> stacks;
    size_t stack_size = 0;
    struct Slot { unsigned long long v; unsigned seq; };
    std::vector<Slot> slots;                 // warp exchange, [nwarps][2 (seq parity)][32 lanes]
    void (*body)(void*) = nullptr; void* body_arg = nullptr;
    std::string err;
    std::vector<unsigned char> dyn_smem;
    std::vector<unsigned> order;             // emulated-thread execution order (forward/reverse/shuffled)
    ~Block() { for (char* s : stacks) munmap(s - 4096, stack_size + 4096); }
};
inline thread_local Block* g_block = nullptr;
inline void* dynamic_smem() { return g_block->dyn_smem.data(); }

inline void set_tid(const Block& b, unsigned t) {
    threadIdx.x = t % blockDim.x; threadIdx.y = (t / blockDim.x) % blockDim.y; threadIdx.z = t / (blockDim.x * blockDim.y);
}
inline void yield_to_sched(State s, const void* site) {
    Block& b = *g_block; Fiber& me = b.f[b.cur];
    me.st = s; me.site = site;
#ifdef CUEMU_ASM_SWITCH
    cuemu_switch(&me.sp, b.sched_sp);
#else
    swapcontext(&me.ctx, &b.sched);
#endif
}
inline void trampoline() {
    Block& b = *g_block;
    try { b.body(b.body_arg); b.f[b.cur].st = DONE; }
    catch (const std::exception& e) { if (b.err.empty()) b.err = e.what(); b.f[b.cur].st = FAILED; }
#ifdef CUEMU_ASM_SWITCH
    cuemu_switch(&b.f[b.cur].sp, b.sched_sp);   // never resumed
    __builtin_unreachable();
#endif
}   // ucontext: returns to uc_link == scheduler
inline void start_fiber(Block& b, unsigned t) {
    Fiber& fb = b.f[t];
#ifdef CUEMU_ASM_SWITCH
    uintptr_t top = ((uintptr_t)(b.stacks[t] + b.stack_size)) & ~(uintptr_t)15;
    void** sp = (void**)top;
    *--sp = nullptr;                       // fake return address of trampoline (never returns)
    *--sp = (void*)&trampoline;            // popped by `ret` in cuemu_switch
    for (int i = 0; i < 6; ++i) *--sp = nullptr;   // rbp rbx r12-r15
    fb.sp = sp;
#else
    getcontext(&fb.ctx);
    fb.ctx.uc_stack.ss_sp = b.stacks[t]; fb.ctx.uc_stack.ss_size = b.stack_size; fb.ctx.uc_link = &b.sched;
    makecontext(&fb.ctx, trampoline, 0);
#endif
    fb.st = RUNNABLE; fb.site = nullptr; fb.seq = 0;
}
inline void resume_fiber(Block& b, unsigned t) {
#ifdef CUEMU_ASM_SWITCH
    cuemu_switch(&b.sched_sp, b.f[t].sp);
#else
    swapcontext(&b.sched, &b.f[t].ctx);
#endif
}

inline void ensure_stacks(Block& b, unsigned n, size_t sz) {
    if (b.stack_size != sz) { for (char* s : b.stacks) munmap(s - 4096, b.stack_size + 4096); b.stacks.clear(); b.stack_size = sz; }
    while (b.stacks.size() < n) {   // guard page below each stack -> SIGSEGV on overflow instead of silent corruption
        char* m = (char*)mmap(nullptr, sz + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) throw KernelError("cuemu: mmap for fiber stack failed");
        mprotect(m, 4096, PROT_NONE);
        b.stacks.push_back(m + 4096);
    }
}

// run one block; fn(arg) executes the kernel body for the current threadIdx
inline void run_block(Block& b, void (*fn)(void*), void* arg, bool strict) {
    const unsigned n = b.nthreads;
    if (!b.fibers) {
        for (unsigned k = 0; k < n; ++k) { unsigned t = b.order[k]; b.cur = t; set_tid(b, t); fn(arg); }
        return;
    }
    b.body = fn; b.body_arg = arg;
    b.f.resize(n);
    b.slots.assign(((n + 31) / 32) * 64, Block::Slot{0, ~0u});
    for (unsigned t = 0; t < n; ++t) start_fiber(b, t);
    for (;;) {
        for (unsigned k = 0; k < n; ++k) {
            unsigned t = b.order[k];
            if (b.f[t].st == RUNNABLE) { b.cur = t; set_tid(b, t); resume_fiber(b, t); }
        }
        if (!b.err.empty()) throw KernelError(b.err);
        unsigned done = 0, at_bar = 0; bool released = false;
        for (unsigned t = 0; t < n; ++t) { done += b.f[t].st == DONE; at_bar += b.f[t].st == AT_BAR; }
        if (done == n) return;
        for (unsigned w = 0; w * 32 < n; ++w) {            // warp barriers: all live lanes arrived?
            unsigned lo = w * 32, hi = std::min(n, lo + 32), waiting = 0, live = 0;
            for (unsigned t = lo; t < hi; ++t) { live += b.f[t].st != DONE; waiting += b.f[t].st == AT_WARP; }
            if (live && waiting == live) { for (unsigned t = lo; t < hi; ++t) if (b.f[t].st == AT_WARP) b.f[t].st = RUNNABLE; released = true; }
        }
        if (released) continue;
        if (at_bar + done == n) {
            const void* site = nullptr;
            for (unsigned t = 0; t < n; ++t) if (b.f[t].st == AT_BAR) {
                if (site && b.f[t].site != site) throw KernelError("cuemu: divergent __syncthreads (threads wait at different call sites)");
                site = b.f[t].site;
            }
            if (strict && done) throw KernelError("cuemu: __syncthreads reached after some threads of the block exited (UB on GPU)");
            for (unsigned t = 0; t < n; ++t) if (b.f[t].st == AT_BAR) b.f[t].st = RUNNABLE;
            continue;
        }
        throw KernelError("cuemu: deadlock: some threads wait in __syncthreads while others wait in a warp-level op");
    }
}
inline bool& strict_mode() { static thread_local bool s = false; return s; }
} // namespace cuemu

// A barrier's call site is the address of a static object of its source call (one per
// expansion of the macro), not a return address: g++ may duplicate a call (tail duplication,
// unswitching on threadIdx), which would make one source barrier look like divergent ones.
__attribute__((noinline)) inline void cuemu_syncthreads_at(const void* site) {
    cuemu::Block& b = *cuemu::g_block;
    if (!b.fibers) { if (b.nthreads > 1) throw cuemu::KernelError("cuemu: __syncthreads called in sequential mode; launch with barrier/fiber mode"); return; }
    cuemu::yield_to_sched(cuemu::AT_BAR, site);
}
#define __syncthreads() cuemu_syncthreads_at(__extension__({ static const char cuemu_site_ = 0; &cuemu_site_; }))
inline int __syncthreads_count(int p) {   // two barriers + a shared counter
    __shared__ int c; __syncthreads(); if (threadIdx.x + threadIdx.y + threadIdx.z == 0) c = 0; __syncthreads();
    if (p) atomicAdd(&c, 1); __syncthreads(); int r = c; __syncthreads(); return r;
}
inline int __syncthreads_or(int p) { return __syncthreads_count(p) != 0; }

// ---------------- warp-level ops (only full-warp masks of live lanes) ----------------
namespace cuemu {
inline unsigned live_mask(const Block& b, unsigned w) {
    if (!b.fibers) return b.nthreads == 1 ? 1u : 0u;
    unsigned m = 0; for (unsigned l = 0; l < 32 && w * 32 + l < b.nthreads; ++l) if (b.f[w * 32 + l].st != DONE) m |= 1u << l; return m;
}
// every lane deposits v, waits for the whole warp, returns the warp's 32 slots; *myseq = this
// exchange's sequence number (a slot belongs to this exchange iff slot.seq == *myseq)
inline const Block::Slot* warp_exchange(unsigned mask, unsigned long long v, unsigned* myseq = nullptr) {
    Block& b = *g_block;
    if (!b.fibers && b.nthreads > 1) throw KernelError("cuemu: warp-level op called in sequential mode; launch with fiber mode");
    const unsigned t = b.cur, w = t / 32, lane = t % 32;
    if (b.fibers && (mask & live_mask(b, w)) != live_mask(b, w)) throw KernelError("cuemu: partial-warp masks are not supported by the emulator");
    Fiber* me = b.fibers ? &b.f[t] : nullptr; unsigned seq = me ? me->seq : 0;
    if (b.slots.size() < (size_t)(w + 1) * 64) b.slots.resize((w + 1) * 64);
    Block::Slot* buf = &b.slots[w * 64 + (seq & 1) * 32];
    buf[lane] = {v, seq};
    if (me) { yield_to_sched(AT_WARP, nullptr); me->seq++; }
    if (myseq) *myseq = seq;
    return buf;
}
template <class T> inline unsigned long long pack(T v) { static_assert(sizeof(T) <= 8); unsigned long long u = 0; std::memcpy(&u, &v, sizeof v); return u; }
template <class T> inline T unpack(unsigned long long u) { T v; std::memcpy(&v, &u, sizeof v); return v; }
inline unsigned lane_id() { return g_block->cur % 32; }
} // namespace cuemu
inline void __syncwarp(unsigned mask = 0xffffffffu) { cuemu::warp_exchange(mask, 0); }
template <class T> inline T __shfl_sync(unsigned m, T v, int src, int width = 32) {
    const auto* b = cuemu::warp_exchange(m, cuemu::pack(v)); unsigned l = cuemu::lane_id();
    return cuemu::unpack<T>(b[(l / width) * width + ((unsigned)src % width)].v);
}
template <class T> inline T __shfl_down_sync(unsigned m, T v, unsigned d, int width = 32) {
    const auto* b = cuemu::warp_exchange(m, cuemu::pack(v)); unsigned l = cuemu::lane_id();
    return (l % width) + d < (unsigned)width ? cuemu::unpack<T>(b[l + d].v) : v;
}
template <class T> inline T __shfl_up_sync(unsigned m, T v, unsigned d, int width = 32) {
    const auto* b = cuemu::warp_exchange(m, cuemu::pack(v)); unsigned l = cuemu::lane_id();
    return (l % width) >= d ? cuemu::unpack<T>(b[l - d].v) : v;
}
template <class T> inline T __shfl_xor_sync(unsigned m, T v, int x, int width = 32) {
    const auto* b = cuemu::warp_exchange(m, cuemu::pack(v)); unsigned l = cuemu::lane_id();
    unsigned s = l ^ (unsigned)x; return (s / width == l / width) ? cuemu::unpack<T>(b[s].v) : v;
}
inline unsigned cuemu_vote(unsigned m, int p, unsigned* part) {   // -> ballot; *part = participating lanes
    unsigned seq; const auto* b = cuemu::warp_exchange(m, p != 0, &seq); unsigned r = 0, q = 0;
    for (unsigned l = 0; l < 32; ++l) if (b[l].seq == seq) { q |= 1u << l; if (b[l].v) r |= 1u << l; }
    if (!cuemu::g_block->fibers) { q = 1; r = p != 0; }
    *part = q; return r;
}
inline unsigned __ballot_sync(unsigned m, int p) { unsigned q; return cuemu_vote(m, p, &q); }
inline int __any_sync(unsigned m, int p) { unsigned q; return cuemu_vote(m, p, &q) != 0; }
inline int __all_sync(unsigned m, int p) { unsigned q; return cuemu_vote(m, p, &q) == q; }
inline unsigned __activemask() { return cuemu::live_mask(*cuemu::g_block, cuemu::g_block->cur / 32); }

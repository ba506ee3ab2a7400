/*
 * nnc WebAssembly SIMD GEMM kernels (f32):  C = [C] + [bias] + A·Bᵀ,  B pre-packed in panels.
 *
 * Built by build.sh (clang --target=wasm32 -O3 -msimd128 -nostdlib) into gemm-wasm.ts; README.md
 * has the ABI. No libc: every loop is written out, and -fno-builtin keeps clang from turning one
 * into a memset/memcpy call (the module imports nothing but env.memory).
 *
 * All pointers are byte addresses in the imported memory, all sizes and strides are in floats.
 * No pointer needs any alignment (wasm v128 loads and stores accept any address); a 32-byte (better
 * 64-byte) aligned packed B keeps each 8-float row of a panel inside one cache line.
 *
 * Packed layout, NR = 8: panel p holds columns n = p*NR .. p*NR+7 of B (rows of the weight W),
 * k-major:  dst[(p*K + k)*NR + j] = B[p*NR + j][k],  zero for p*NR + j >= N.
 *
 * Arithmetic is f32x4.mul then f32x4.add (WebAssembly SIMD has no FMA; relaxed-simd is not used),
 * so results do not depend on the engine or the host CPU.
 *
 * How the kernels are written, and why (V8's TurboFan on x64 is the target that was measured):
 *  - x64 has 16 xmm registers and V8 keeps one as scratch, so a basic block may hold at most ~15
 *    live v128 values. TurboFan issues all loads of a block first and the arithmetic after them, so
 *    "accumulators + loads in one block + 1" must stay ≤ 15, or it spills accumulators to the stack
 *    on every step. Hence one k step per basic block: the loops are unrolled by hand four times
 *    with an exit test between steps (`if (k == 1) break;` …), which also lets every load use a
 *    constant offset from a pointer that moves once per four steps (-mllvm -disable-lsr in
 *    build.sh keeps those offsets as wasm `offset=` immediates rather than i32.add's).
 *  - Every micro-kernel keeps 6 to 8 independent accumulator chains, so that the f32x4.add latency
 *    (3 cycles, 2 per cycle) is covered; the 1- and 2-row kernels get them by giving alternate k
 *    steps their own accumulators.
 */
#include <wasm_simd128.h>

#define NR 8 /* panel width (floats): two v128 per packed row */
#ifndef MC
#define MC 128 /* rows of A per block: 128 rows × K ≤ 1024 floats stay in the 512 KiB L2 */
#endif

#define EXPORT __attribute__((visibility("default")))

typedef v128_t V;

#define ADD wasm_f32x4_add
#define MUL wasm_f32x4_mul
#define LD(p) wasm_v128_load(p)
#define ST(p, x) wasm_v128_store((p), (x))
#define SPLAT(p) wasm_v128_load32_splat(p)
#define ZERO wasm_f32x4_splat(0.0f)

EXPORT int nnc_nr(void) { return NR; }

EXPORT int nnc_packed_size(int N, int K) {
  if (N <= 0 || K <= 0) return 0;
  return (N + NR - 1) / NR * NR * K;
}

/* ───────────── packing ───────────── */

EXPORT void nnc_pack(const float *src, int N, int K, int sn, int sk, float *dst) {
  if (N <= 0 || K <= 0) return;
  int np = (N + NR - 1) / NR;
  for (int p = 0; p < np; p++) {
    int n0 = p * NR;
    int nv = N - n0 < NR ? N - n0 : NR;
    const float *s = src + n0 * sn;
    float *d = dst + p * K * NR;
    if (nv == NR && sn == 1) {
      /* B = Sᵀ (e.g. V in P·V): each packed row is 8 contiguous floats of the source */
      for (int k = 0; k < K; k++) {
        const float *q = s + k * sk;
        ST(d, LD(q));
        ST(d + 4, LD(q + 4));
        d += NR;
      }
    } else if (nv == NR && sk == 1) {
      /* B rows contiguous in k (a Linear weight, K in Q·Kᵀ): 4×4 transposes */
      const float *r0 = s, *r1 = s + sn, *r2 = s + 2 * sn, *r3 = s + 3 * sn;
      const float *r4 = s + 4 * sn, *r5 = s + 5 * sn, *r6 = s + 6 * sn, *r7 = s + 7 * sn;
      int k = 0;
      for (; k + 4 <= K; k += 4) {
        V a0 = LD(r0 + k), a1 = LD(r1 + k), a2 = LD(r2 + k), a3 = LD(r3 + k);
        V t0 = wasm_i32x4_shuffle(a0, a1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(a2, a3, 0, 4, 1, 5);
        V t2 = wasm_i32x4_shuffle(a0, a1, 2, 6, 3, 7), t3 = wasm_i32x4_shuffle(a2, a3, 2, 6, 3, 7);
        ST(d + 0, wasm_i32x4_shuffle(t0, t1, 0, 1, 4, 5));
        ST(d + 8, wasm_i32x4_shuffle(t0, t1, 2, 3, 6, 7));
        ST(d + 16, wasm_i32x4_shuffle(t2, t3, 0, 1, 4, 5));
        ST(d + 24, wasm_i32x4_shuffle(t2, t3, 2, 3, 6, 7));
        V b0 = LD(r4 + k), b1 = LD(r5 + k), b2 = LD(r6 + k), b3 = LD(r7 + k);
        V u0 = wasm_i32x4_shuffle(b0, b1, 0, 4, 1, 5), u1 = wasm_i32x4_shuffle(b2, b3, 0, 4, 1, 5);
        V u2 = wasm_i32x4_shuffle(b0, b1, 2, 6, 3, 7), u3 = wasm_i32x4_shuffle(b2, b3, 2, 6, 3, 7);
        ST(d + 4, wasm_i32x4_shuffle(u0, u1, 0, 1, 4, 5));
        ST(d + 12, wasm_i32x4_shuffle(u0, u1, 2, 3, 6, 7));
        ST(d + 20, wasm_i32x4_shuffle(u2, u3, 0, 1, 4, 5));
        ST(d + 28, wasm_i32x4_shuffle(u2, u3, 2, 3, 6, 7));
        d += 4 * NR;
      }
      for (; k < K; k++) {
        d[0] = r0[k]; d[1] = r1[k]; d[2] = r2[k]; d[3] = r3[k];
        d[4] = r4[k]; d[5] = r5[k]; d[6] = r6[k]; d[7] = r7[k];
        d += NR;
      }
    } else {
      /* general strides, or the last (partial) panel, whose padding columns are zero */
      for (int k = 0; k < K; k++) {
        const float *q = s + k * sk;
        int j = 0;
        for (; j < nv; j++) d[j] = q[j * sn];
        for (; j < NR; j++) d[j] = 0.0f;
        d += NR;
      }
    }
  }
}

/* ───────────── tile edges: 8 columns of which the first nv are real ───────────── */

/* lanes 0..min(nv,4)-1 from p, zero elsewhere; reads nothing at or past p[nv] */
static inline V load4n(const float *p, int nv) {
  if (nv >= 4) return LD(p);
  if (nv <= 0) return ZERO;
  float x0 = p[0];
  float x1 = nv > 1 ? p[1] : 0.0f;
  float x2 = nv > 2 ? p[2] : 0.0f;
  return wasm_f32x4_make(x0, x1, x2, 0.0f);
}

/* writes lanes 0..min(nv,4)-1 only */
static inline void store4n(float *p, V x, int nv) {
  if (nv >= 4) {
    ST(p, x);
    return;
  }
  if (nv > 0) p[0] = wasm_f32x4_extract_lane(x, 0);
  if (nv > 1) p[1] = wasm_f32x4_extract_lane(x, 1);
  if (nv > 2) p[2] = wasm_f32x4_extract_lane(x, 2);
}

/* the bias of one panel (two vectors), zero without one */
static inline void load_bias(const float *bias, int nv, V *bv) {
  if (bias) {
    bv[0] = load4n(bias, nv);
    bv[1] = load4n(bias + 4, nv - 4);
  } else {
    bv[0] = bv[1] = ZERO;
  }
}

/* initial accumulators of one tile row: (acc ? C : 0) + bias, columns < nv only */
static inline void init_row(const float *c, const V *bv, int acc, int nv, V *lo, V *hi) {
  V l = bv[0], h = bv[1];
  if (acc) {
    if (nv == NR) {
      l = ADD(LD(c), l);
      h = ADD(LD(c + 4), h);
    } else {
      l = ADD(load4n(c, nv), l);
      h = ADD(load4n(c + 4, nv - 4), h);
    }
  }
  *lo = l;
  *hi = h;
}

static inline void store_row(float *c, V lo, V hi, int nv) {
  if (nv == NR) {
    ST(c, lo);
    ST(c + 4, hi);
  } else {
    store4n(c, lo, nv);
    store4n(c + 4, hi, nv - 4);
  }
}

/* ───────────── micro-kernels: a few rows × one 8-column panel (or two), K steps ───────────── */
/* A: the tile's first row at its first k; B: the panel at its first k; C: the tile's first row;
 * bv: the panel's bias (zero vectors when there is none);
 * acc: add onto C; nv: real columns of the (last) panel, 1..8. Each loop runs K ≥ 1 steps, one
 * per basic block, four per trip (see the header). */

#define UNROLL4(STEP, ADVANCE)            \
  for (int k = K;;) {                     \
    STEP(0, 0);                           \
    if (k == 1) break;                    \
    STEP(1, 1);                           \
    if (k == 2) break;                    \
    STEP(2, 0);                           \
    if (k == 3) break;                    \
    STEP(3, 1);                           \
    if (k == 4) break;                    \
    ADVANCE;                              \
    k -= 4;                               \
  }

/* 4 × 8: 8 chains; per k 2 B loads + 4 A broadcasts (14 live v128). */
static void kern4(int K, const float *A, int lda, const float *B, float *C, int ldc,
                  const V *bv, int acc, int nv) {
  V c00, c01, c10, c11, c20, c21, c30, c31;
  init_row(C, bv, acc, nv, &c00, &c01);
  init_row(C + ldc, bv, acc, nv, &c10, &c11);
  init_row(C + 2 * ldc, bv, acc, nv, &c20, &c21);
  init_row(C + 3 * ldc, bv, acc, nv, &c30, &c31);
  const float *a0 = A, *a1 = A + lda, *a2 = A + 2 * lda, *a3 = A + 3 * lda;
#define STEP(o, _)                                   \
  {                                                  \
    V b0 = LD(B + (o) * NR), b1 = LD(B + (o) * NR + 4); \
    V x = SPLAT(a0 + (o));                           \
    c00 = ADD(c00, MUL(x, b0));                      \
    c01 = ADD(c01, MUL(x, b1));                      \
    x = SPLAT(a1 + (o));                             \
    c10 = ADD(c10, MUL(x, b0));                      \
    c11 = ADD(c11, MUL(x, b1));                      \
    x = SPLAT(a2 + (o));                             \
    c20 = ADD(c20, MUL(x, b0));                      \
    c21 = ADD(c21, MUL(x, b1));                      \
    x = SPLAT(a3 + (o));                             \
    c30 = ADD(c30, MUL(x, b0));                      \
    c31 = ADD(c31, MUL(x, b1));                      \
  }
  UNROLL4(STEP, (a0 += 4, a1 += 4, a2 += 4, a3 += 4, B += 4 * NR))
#undef STEP
  store_row(C, c00, c01, nv);
  store_row(C + ldc, c10, c11, nv);
  store_row(C + 2 * ldc, c20, c21, nv);
  store_row(C + 3 * ldc, c30, c31, nv);
}

/* 3 × 8: 6 chains; per k 2 B loads + 3 A broadcasts. */
static void kern3(int K, const float *A, int lda, const float *B, float *C, int ldc,
                  const V *bv, int acc, int nv) {
  V c00, c01, c10, c11, c20, c21;
  init_row(C, bv, acc, nv, &c00, &c01);
  init_row(C + ldc, bv, acc, nv, &c10, &c11);
  init_row(C + 2 * ldc, bv, acc, nv, &c20, &c21);
  const float *a0 = A, *a1 = A + lda, *a2 = A + 2 * lda;
#define STEP(o, _)                                   \
  {                                                  \
    V b0 = LD(B + (o) * NR), b1 = LD(B + (o) * NR + 4); \
    V x = SPLAT(a0 + (o));                           \
    c00 = ADD(c00, MUL(x, b0));                      \
    c01 = ADD(c01, MUL(x, b1));                      \
    x = SPLAT(a1 + (o));                             \
    c10 = ADD(c10, MUL(x, b0));                      \
    c11 = ADD(c11, MUL(x, b1));                      \
    x = SPLAT(a2 + (o));                             \
    c20 = ADD(c20, MUL(x, b0));                      \
    c21 = ADD(c21, MUL(x, b1));                      \
  }
  UNROLL4(STEP, (a0 += 4, a1 += 4, a2 += 4, B += 4 * NR))
#undef STEP
  store_row(C, c00, c01, nv);
  store_row(C + ldc, c10, c11, nv);
  store_row(C + 2 * ldc, c20, c21, nv);
}

/* 2 × 8: 8 chains (even and odd k steps accumulate separately); per k 2 B loads + 2 broadcasts. */
static void kern2(int K, const float *A, int lda, const float *B, float *C, int ldc,
                  const V *bv, int acc, int nv) {
  V c00[2], c01[2], c10[2], c11[2];
  init_row(C, bv, acc, nv, &c00[0], &c01[0]);
  init_row(C + ldc, bv, acc, nv, &c10[0], &c11[0]);
  c00[1] = c01[1] = c10[1] = c11[1] = ZERO;
  const float *a0 = A, *a1 = A + lda;
#define STEP(o, s)                                   \
  {                                                  \
    V b0 = LD(B + (o) * NR), b1 = LD(B + (o) * NR + 4); \
    V x = SPLAT(a0 + (o));                           \
    c00[s] = ADD(c00[s], MUL(x, b0));                \
    c01[s] = ADD(c01[s], MUL(x, b1));                \
    x = SPLAT(a1 + (o));                             \
    c10[s] = ADD(c10[s], MUL(x, b0));                \
    c11[s] = ADD(c11[s], MUL(x, b1));                \
  }
  UNROLL4(STEP, (a0 += 4, a1 += 4, B += 4 * NR))
#undef STEP
  store_row(C, ADD(c00[0], c00[1]), ADD(c01[0], c01[1]), nv);
  store_row(C + ldc, ADD(c10[0], c10[1]), ADD(c11[0], c11[1]), nv);
}

/* 1 × 8: 8 chains (k mod 4 accumulate separately); per k 2 B loads + 1 broadcast. */
static void kern1(int K, const float *A, const float *B, float *C, const V *bv, int acc, int nv) {
  V s0, t0;
  init_row(C, bv, acc, nv, &s0, &t0);
  V s1 = ZERO, t1 = ZERO, s2 = ZERO, t2 = ZERO, s3 = ZERO, t3 = ZERO;
#define STEP(o, _)                                   \
  {                                                  \
    V x = SPLAT(A + (o));                            \
    s##o = ADD(s##o, MUL(x, LD(B + (o) * NR)));      \
    t##o = ADD(t##o, MUL(x, LD(B + (o) * NR + 4)));  \
  }
  UNROLL4(STEP, (A += 4, B += 4 * NR))
#undef STEP
  store_row(C, ADD(ADD(s0, s1), ADD(s2, s3)), ADD(ADD(t0, t1), ADD(t2, t3)), nv);
}

/* GEMV, 1 × 16 over two panels (B and B + ps): 8 chains (even and odd k steps accumulate
 * separately), two B streams; per k 4 B loads + 1 broadcast. The second panel has nv2 columns. */
static void gemv2(int K, const float *A, const float *B, int ps, float *C, const V *bv, int acc,
                  int nv2) {
  const float *B1 = B + ps;
  V s[2], t[2], u[2], w[2];
  init_row(C, bv, acc, NR, &s[0], &t[0]);
  init_row(C + NR, bv + 2, acc, nv2, &u[0], &w[0]);
  s[1] = t[1] = u[1] = w[1] = ZERO;
#define STEP(o, i)                                    \
  {                                                   \
    V x = SPLAT(A + (o));                             \
    s[i] = ADD(s[i], MUL(x, LD(B + (o) * NR)));       \
    t[i] = ADD(t[i], MUL(x, LD(B + (o) * NR + 4)));   \
    u[i] = ADD(u[i], MUL(x, LD(B1 + (o) * NR)));      \
    w[i] = ADD(w[i], MUL(x, LD(B1 + (o) * NR + 4)));  \
  }
  UNROLL4(STEP, (A += 4, B += 4 * NR, B1 += 4 * NR))
#undef STEP
  store_row(C, ADD(s[0], s[1]), ADD(t[0], t[1]), NR);
  store_row(C + NR, ADD(u[0], u[1]), ADD(w[0], w[1]), nv2);
}

/* GEMV on one panel, summing exactly as gemv2 does (even and odd k steps apart; 4 chains), so that
 * a column's result does not depend on whether its panel was paired (sub-range calls agree bit for
 * bit with a call on all panels). Used for the last panel of an odd count. */
static void gemv1(int K, const float *A, const float *B, float *C, const V *bv, int acc, int nv) {
  V s[2], t[2];
  init_row(C, bv, acc, nv, &s[0], &t[0]);
  s[1] = t[1] = ZERO;
#define STEP(o, i)                                    \
  {                                                   \
    V x = SPLAT(A + (o));                             \
    s[i] = ADD(s[i], MUL(x, LD(B + (o) * NR)));       \
    t[i] = ADD(t[i], MUL(x, LD(B + (o) * NR + 4)));   \
  }
  UNROLL4(STEP, (A += 4, B += 4 * NR))
#undef STEP
  store_row(C, ADD(s[0], s[1]), ADD(t[0], t[1]), nv);
}

/* K == 0: C = (acc ? C : 0) + bias */
static void no_k(int M, int N, const float *bias, float *C, int ldc, int acc) {
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) C[m * ldc + n] = (acc ? C[m * ldc + n] : 0.0f) + (bias ? bias[n] : 0.0f);
}

/* ───────────── driver ───────────── */

EXPORT void nnc_gemm(int M, int N, int K, const float *A, int lda, const float *Bp,
                     const float *bias, float *C, int ldc, int flags) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    no_k(M, N, bias, C, ldc, flags & 1);
    return;
  }
  int np = (N + NR - 1) / NR;
  int ps = K * NR; /* floats from one panel to the next */

  if (M == 1) {
    /* GEMV: panels in pairs, each pair one pass over K (W is streamed once; nothing to reuse) */
    int acc = flags & 1;
    int p = 0;
    for (; p + 2 <= np; p += 2) {
      int n0 = p * NR;
      int nv2 = N - n0 - NR < NR ? N - n0 - NR : NR;
      V bv[4];
      load_bias(bias ? bias + n0 : 0, NR, bv);
      load_bias(bias ? bias + n0 + NR : 0, nv2, bv + 2);
      gemv2(K, A, Bp + p * ps, ps, C + n0, bv, acc, nv2);
    }
    if (p < np) {
      int n0 = p * NR;
      int nv = N - n0;
      V bv[2];
      load_bias(bias ? bias + n0 : 0, nv, bv);
      gemv1(K, A, Bp + p * ps, C + n0, bv, acc, nv);
    }
    return;
  }

  /* Row blocks of MC rows, each swept by every panel in turn: the panel (K × 8 floats) is reused
   * from L1/L2 by all row tiles of the block, the block of A (MC × K floats) from L2 by all panels.
   * No K blocking: measured here (K up to 4096), splitting K into L1-sized panel blocks was not
   * faster; the 4×8 kernel needs ~48 bytes of A and B per 64 flops, which L2 and L3 keep up with. */
  int acc = flags & 1;
  for (int m0 = 0; m0 < M; m0 += MC) {
    int me = M - m0 < MC ? M : m0 + MC;
    for (int p = 0; p < np; p++) {
      int n0 = p * NR;
      int nv = N - n0 < NR ? N - n0 : NR;
      V bv[2];
      load_bias(bias ? bias + n0 : 0, nv, bv);
      const float *B = Bp + p * ps;
      const float *a = A + m0 * lda;
      float *c = C + m0 * ldc + n0;
      int m = m0;
      for (; m + 4 <= me; m += 4) {
        kern4(K, a, lda, B, c, ldc, bv, acc, nv);
        a += 4 * lda;
        c += 4 * ldc;
      }
      switch (me - m) {
        case 3: kern3(K, a, lda, B, c, ldc, bv, acc, nv); break;
        case 2: kern2(K, a, lda, B, c, ldc, bv, acc, nv); break;
        case 1: kern1(K, a, B, c, bv, acc, nv); break;
        default: break;
      }
    }
  }
}

/* ───────────── float32 activations, in place (the host backends' epilogues) ─────────────
 * tanh: Eigen's rational approximation for float32 (odd degree-13 numerator over even degree-6
 * denominator, input clamped to ±7.905, where float32 tanh is 1 to within an ulp), evaluated in
 * float32 four lanes at a time: a few ulps from tanh. sigmoid(x) = 0.5 + 0.5 · tanh(0.5 · x).
 * The same function as tanhf in src/runtime/host.ts, which evaluates it in double precision. */

static inline V tanh4(V x) {
  const V c = wasm_f32x4_splat(7.90531110763549805f);
  x = wasm_f32x4_pmin(wasm_f32x4_pmax(x, wasm_f32x4_neg(c)), c);
  V x2 = MUL(x, x);
  V p = ADD(MUL(x2, wasm_f32x4_splat(-2.76076847742355e-16f)), wasm_f32x4_splat(2.00018790482477e-13f));
  p = ADD(MUL(x2, p), wasm_f32x4_splat(-8.60467152213735e-11f));
  p = ADD(MUL(x2, p), wasm_f32x4_splat(5.12229709037114e-08f));
  p = ADD(MUL(x2, p), wasm_f32x4_splat(1.48572235717979e-05f));
  p = ADD(MUL(x2, p), wasm_f32x4_splat(6.37261928875436e-04f));
  p = ADD(MUL(x2, p), wasm_f32x4_splat(4.89352455891786e-03f));
  V q = ADD(MUL(x2, wasm_f32x4_splat(1.19825839466702e-06f)), wasm_f32x4_splat(1.18534705686654e-04f));
  q = ADD(MUL(x2, q), wasm_f32x4_splat(2.26843463243900e-03f));
  q = ADD(MUL(x2, q), wasm_f32x4_splat(4.89352518554385e-03f));
  return wasm_f32x4_div(MUL(x, p), q);
}

/* kind 0: x ← tanh(x); kind 1: x ← sigmoid(x), for x[0 .. n) */
EXPORT void nnc_act(int kind, float *x, int n) {
  const V half = wasm_f32x4_splat(0.5f);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    V v = wasm_v128_load(x + i);
    v = kind ? ADD(half, MUL(half, tanh4(MUL(half, v)))) : tanh4(v);
    wasm_v128_store(x + i, v);
  }
  if (i < n) {
    float t[4] = {0, 0, 0, 0};
    for (int j = 0; i + j < n; j++) t[j] = x[i + j];
    V v = wasm_v128_load(t);
    v = kind ? ADD(half, MUL(half, tanh4(MUL(half, v)))) : tanh4(v);
    wasm_v128_store(t, v);
    for (int j = 0; i + j < n; j++) x[i + j] = t[j];
  }
}

/*
 * nnc WebAssembly SIMD GEMM kernels (f32): C = [C] + [bias] + A·Bᵀ with B pre-packed in panels.
 *
 * Built by build.sh (clang --target=wasm32 -O3 -msimd128 -nostdlib) into gemm-wasm.ts; see README.md
 * for the ABI. No libc: every loop is written out; -fno-builtin keeps clang from turning a loop
 * into a memset/memcpy call (the module must import nothing but env.memory).
 *
 * All pointers are byte addresses in the imported memory, all sizes and strides are in floats.
 * No alignment is required of any pointer (wasm v128 loads and stores accept any address); a
 * 32-byte (better: 64-byte) aligned packed B keeps every 8-float row of a panel inside one cache
 * line.
 *
 * Packed layout, NR = 8: panel p holds columns n = p*NR .. p*NR+7 of B (rows of the weight W),
 * k-major: dst[(p*K + k)*NR + j] = B[p*NR + j][k], zero for p*NR + j >= N.
 *
 * Arithmetic is f32x4 mul followed by f32x4 add (WebAssembly SIMD has no FMA; relaxed-simd is not
 * used), so results are reproducible across engines and hosts.
 */
#include <wasm_simd128.h>

#define NR 8 /* panel width (floats) */
#define MC 128 /* rows of A per block: 128 rows × K ≤ 512 floats = 256 KiB stays in L2 */
#define KC 512 /* K per block: a panel block (KC × NR floats = 16 KiB) stays in L1 */

#define EXPORT __attribute__((visibility("default")))

typedef v128_t V;

#define ADD wasm_f32x4_add
#define MUL wasm_f32x4_mul
#define LD(p) wasm_v128_load(p)
#define ST(p, x) wasm_v128_store((p), (x))
#define SPLAT(p) wasm_v128_load32_splat(p)

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
      /* B = Sᵀ (e.g. the V operand of attention): each packed row is 8 contiguous floats */
      for (int k = 0; k < K; k++) {
        const float *q = s + k * sk;
        ST(d, LD(q));
        ST(d + 4, LD(q + 4));
        d += NR;
      }
    } else if (nv == NR && sk == 1) {
      /* B rows contiguous in k (a Linear weight, the K operand of attention): 4×4 transposes */
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
      /* general strides, or the last (partial) panel: zero padding columns */
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

/* ───────────── tile edges: partial loads / stores of 8 columns ───────────── */

/* the first nv (≤ 4 used; ≥ 4 means all) floats of p in lanes 0.., zero elsewhere; reads nothing past nv */
static inline V load4n(const float *p, int nv) {
  if (nv >= 4) return LD(p);
  if (nv <= 0) return wasm_f32x4_splat(0.0f);
  float x0 = p[0];
  float x1 = nv > 1 ? p[1] : 0.0f;
  float x2 = nv > 2 ? p[2] : 0.0f;
  return wasm_f32x4_make(x0, x1, x2, 0.0f);
}

static inline void store4n(float *p, V x, int nv) {
  if (nv >= 4) { ST(p, x); return; }
  if (nv > 0) p[0] = wasm_f32x4_extract_lane(x, 0);
  if (nv > 1) p[1] = wasm_f32x4_extract_lane(x, 1);
  if (nv > 2) p[2] = wasm_f32x4_extract_lane(x, 2);
}

/* Initial accumulators of one row of a tile: (acc ? C : 0) + (bias ? bias : 0), columns < nv only. */
static inline void init_row(const float *c, const V *bias, int acc, int nv, V *lo, V *hi) {
  V l = bias[0], h = bias[1];
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

/* ───────────── micro-kernels: rows × 8 columns (one panel), K steps ───────────── */
/* A: first row of the tile (at its first k), B: the panel at its first k, C: first row of the tile.
 * bias: two vectors (zero when there is no bias or this is not the first K block). */

/* 4 × 8: 8 accumulator chains, 2 B loads + 4 A broadcasts per k. */
static void kern4(int K, const float *A, int lda, const float *B, float *C, int ldc,
                  const V *bias, int acc, int nv) {
  V c00, c01, c10, c11, c20, c21, c30, c31;
  init_row(C, bias, acc, nv, &c00, &c01);
  init_row(C + ldc, bias, acc, nv, &c10, &c11);
  init_row(C + 2 * ldc, bias, acc, nv, &c20, &c21);
  init_row(C + 3 * ldc, bias, acc, nv, &c30, &c31);
  const float *a0 = A, *a1 = A + lda, *a2 = A + 2 * lda, *a3 = A + 3 * lda;
  for (int k = 0; k < K; k++) {
    V b0 = LD(B), b1 = LD(B + 4);
    B += NR;
    V x = SPLAT(a0 + k);
    c00 = ADD(c00, MUL(x, b0));
    c01 = ADD(c01, MUL(x, b1));
    x = SPLAT(a1 + k);
    c10 = ADD(c10, MUL(x, b0));
    c11 = ADD(c11, MUL(x, b1));
    x = SPLAT(a2 + k);
    c20 = ADD(c20, MUL(x, b0));
    c21 = ADD(c21, MUL(x, b1));
    x = SPLAT(a3 + k);
    c30 = ADD(c30, MUL(x, b0));
    c31 = ADD(c31, MUL(x, b1));
  }
  store_row(C, c00, c01, nv);
  store_row(C + ldc, c10, c11, nv);
  store_row(C + 2 * ldc, c20, c21, nv);
  store_row(C + 3 * ldc, c30, c31, nv);
}

/* 3 × 8: 6 chains. */
static void kern3(int K, const float *A, int lda, const float *B, float *C, int ldc,
                  const V *bias, int acc, int nv) {
  V c00, c01, c10, c11, c20, c21;
  init_row(C, bias, acc, nv, &c00, &c01);
  init_row(C + ldc, bias, acc, nv, &c10, &c11);
  init_row(C + 2 * ldc, bias, acc, nv, &c20, &c21);
  const float *a0 = A, *a1 = A + lda, *a2 = A + 2 * lda;
  for (int k = 0; k < K; k++) {
    V b0 = LD(B), b1 = LD(B + 4);
    B += NR;
    V x = SPLAT(a0 + k);
    c00 = ADD(c00, MUL(x, b0));
    c01 = ADD(c01, MUL(x, b1));
    x = SPLAT(a1 + k);
    c10 = ADD(c10, MUL(x, b0));
    c11 = ADD(c11, MUL(x, b1));
    x = SPLAT(a2 + k);
    c20 = ADD(c20, MUL(x, b0));
    c21 = ADD(c21, MUL(x, b1));
  }
  store_row(C, c00, c01, nv);
  store_row(C + ldc, c10, c11, nv);
  store_row(C + 2 * ldc, c20, c21, nv);
}

/* 2 × 8, k unrolled by 2 into two accumulator sets: 8 chains. */
static void kern2(int K, const float *A, int lda, const float *B, float *C, int ldc,
                  const V *bias, int acc, int nv) {
  V c00, c01, c10, c11;
  init_row(C, bias, acc, nv, &c00, &c01);
  init_row(C + ldc, bias, acc, nv, &c10, &c11);
  V d00 = wasm_f32x4_splat(0.0f), d01 = d00, d10 = d00, d11 = d00;
  const float *a0 = A, *a1 = A + lda;
  int k = 0;
  for (; k + 2 <= K; k += 2) {
    V b0 = LD(B), b1 = LD(B + 4), b2 = LD(B + 8), b3 = LD(B + 12);
    B += 2 * NR;
    V x = SPLAT(a0 + k), y = SPLAT(a0 + k + 1);
    c00 = ADD(c00, MUL(x, b0));
    c01 = ADD(c01, MUL(x, b1));
    d00 = ADD(d00, MUL(y, b2));
    d01 = ADD(d01, MUL(y, b3));
    x = SPLAT(a1 + k);
    y = SPLAT(a1 + k + 1);
    c10 = ADD(c10, MUL(x, b0));
    c11 = ADD(c11, MUL(x, b1));
    d10 = ADD(d10, MUL(y, b2));
    d11 = ADD(d11, MUL(y, b3));
  }
  if (k < K) {
    V b0 = LD(B), b1 = LD(B + 4);
    V x = SPLAT(a0 + k);
    c00 = ADD(c00, MUL(x, b0));
    c01 = ADD(c01, MUL(x, b1));
    x = SPLAT(a1 + k);
    c10 = ADD(c10, MUL(x, b0));
    c11 = ADD(c11, MUL(x, b1));
  }
  store_row(C, ADD(c00, d00), ADD(c01, d01), nv);
  store_row(C + ldc, ADD(c10, d10), ADD(c11, d11), nv);
}

/* 1 × 8 (GEMV), k unrolled by 4 into four accumulator sets: 8 chains, one contiguous B stream. */
static void kern1(int K, const float *A, const float *B, float *C, const V *bias, int acc, int nv) {
  V s0, t0;
  init_row(C, bias, acc, nv, &s0, &t0);
  V z = wasm_f32x4_splat(0.0f);
  V s1 = z, t1 = z, s2 = z, t2 = z, s3 = z, t3 = z;
  int k = 0;
  for (; k + 4 <= K; k += 4) {
    V x0 = SPLAT(A + k), x1 = SPLAT(A + k + 1), x2 = SPLAT(A + k + 2), x3 = SPLAT(A + k + 3);
    s0 = ADD(s0, MUL(x0, LD(B)));
    t0 = ADD(t0, MUL(x0, LD(B + 4)));
    s1 = ADD(s1, MUL(x1, LD(B + 8)));
    t1 = ADD(t1, MUL(x1, LD(B + 12)));
    s2 = ADD(s2, MUL(x2, LD(B + 16)));
    t2 = ADD(t2, MUL(x2, LD(B + 20)));
    s3 = ADD(s3, MUL(x3, LD(B + 24)));
    t3 = ADD(t3, MUL(x3, LD(B + 28)));
    B += 4 * NR;
  }
  for (; k < K; k++) {
    V x = SPLAT(A + k);
    s0 = ADD(s0, MUL(x, LD(B)));
    t0 = ADD(t0, MUL(x, LD(B + 4)));
    B += NR;
  }
  store_row(C, ADD(ADD(s0, s1), ADD(s2, s3)), ADD(ADD(t0, t1), ADD(t2, t3)), nv);
}

/* 1 × 16 (two panels, ps floats apart), k unrolled by 2: 8 chains, two B streams. */
static void kern1x2(int K, const float *A, const float *B, int ps, float *C, const V *bias, int acc, int nv2) {
  const float *B1 = B + ps;
  V s0, t0, u0, w0;
  init_row(C, bias, acc, NR, &s0, &t0);
  init_row(C + NR, bias + 2, acc, nv2, &u0, &w0);
  V z = wasm_f32x4_splat(0.0f);
  V s1 = z, t1 = z, u1 = z, w1 = z;
  int k = 0;
  for (; k + 2 <= K; k += 2) {
    V x0 = SPLAT(A + k), x1 = SPLAT(A + k + 1);
    s0 = ADD(s0, MUL(x0, LD(B)));
    t0 = ADD(t0, MUL(x0, LD(B + 4)));
    u0 = ADD(u0, MUL(x0, LD(B1)));
    w0 = ADD(w0, MUL(x0, LD(B1 + 4)));
    s1 = ADD(s1, MUL(x1, LD(B + 8)));
    t1 = ADD(t1, MUL(x1, LD(B + 12)));
    u1 = ADD(u1, MUL(x1, LD(B1 + 8)));
    w1 = ADD(w1, MUL(x1, LD(B1 + 12)));
    B += 2 * NR;
    B1 += 2 * NR;
  }
  if (k < K) {
    V x = SPLAT(A + k);
    s0 = ADD(s0, MUL(x, LD(B)));
    t0 = ADD(t0, MUL(x, LD(B + 4)));
    u0 = ADD(u0, MUL(x, LD(B1)));
    w0 = ADD(w0, MUL(x, LD(B1 + 4)));
  }
  store_row(C, ADD(s0, s1), ADD(t0, t1), NR);
  store_row(C + NR, ADD(u0, u1), ADD(w0, w1), nv2);
}

/* 1 × 32 (four panels, ps floats apart): 8 chains, four B streams. */
static void kern1x4(int K, const float *A, const float *B, int ps, float *C, const V *bias, int acc, int nv4) {
  const float *B1 = B + ps, *B2 = B + 2 * ps, *B3 = B + 3 * ps;
  V s0, t0, s1, t1, s2, t2, s3, t3;
  init_row(C, bias, acc, NR, &s0, &t0);
  init_row(C + NR, bias + 2, acc, NR, &s1, &t1);
  init_row(C + 2 * NR, bias + 4, acc, NR, &s2, &t2);
  init_row(C + 3 * NR, bias + 6, acc, nv4, &s3, &t3);
  for (int k = 0; k < K; k++) {
    V x = SPLAT(A + k);
    s0 = ADD(s0, MUL(x, LD(B)));
    t0 = ADD(t0, MUL(x, LD(B + 4)));
    s1 = ADD(s1, MUL(x, LD(B1)));
    t1 = ADD(t1, MUL(x, LD(B1 + 4)));
    s2 = ADD(s2, MUL(x, LD(B2)));
    t2 = ADD(t2, MUL(x, LD(B2 + 4)));
    s3 = ADD(s3, MUL(x, LD(B3)));
    t3 = ADD(t3, MUL(x, LD(B3 + 4)));
    B += NR; B1 += NR; B2 += NR; B3 += NR;
  }
  store_row(C, s0, t0, NR);
  store_row(C + NR, s1, t1, NR);
  store_row(C + 2 * NR, s2, t2, NR);
  store_row(C + 3 * NR, s3, t3, nv4);
}

static void load_bias(const float *bs, int n0, int nv, V *bv) {
  if (bs) {
    bv[0] = load4n(bs + n0, nv);
    bv[1] = load4n(bs + n0 + 4, nv - 4);
  } else {
    bv[0] = bv[1] = wasm_f32x4_splat(0.0f);
  }
}

#ifndef GEMV
#define GEMV 1
#endif

/* ───────────── driver ───────────── */

EXPORT void nnc_gemm(int M, int N, int K, const float *A, int lda, const float *Bp,
                     const float *bias, float *C, int ldc, int flags) {
  if (M <= 0 || N <= 0) return;
  if (K < 0) K = 0;
  int np = (N + NR - 1) / NR;
  int k0 = 0;
  do {
    int kb = K - k0 < KC ? K - k0 : KC;
    /* a K block after the first adds onto C as it stands, without the bias */
    int acc = k0 == 0 ? (flags & 1) : 1;
    const float *bs = k0 == 0 ? bias : 0;
    if (M == 1 && GEMV > 1) {
      int p = 0;
      V bv[8];
      for (; p + GEMV <= np; p += GEMV) {
        int n0 = p * NR;
        for (int i = 0; i < GEMV; i++) load_bias(bs, n0 + i * NR, N - n0 - i * NR, bv + 2 * i);
        int nvl = N - n0 - (GEMV - 1) * NR;
        if (nvl > NR) nvl = NR;
        if (GEMV == 2) kern1x2(kb, A + k0, Bp + (p * K + k0) * NR, K * NR, C + n0, bv, acc, nvl);
        else kern1x4(kb, A + k0, Bp + (p * K + k0) * NR, K * NR, C + n0, bv, acc, nvl);
      }
      for (; p < np; p++) {
        int n0 = p * NR;
        int nv = N - n0 < NR ? N - n0 : NR;
        load_bias(bs, n0, nv, bv);
        kern1(kb, A + k0, Bp + (p * K + k0) * NR, C + n0, bv, acc, nv);
      }
      k0 += kb;
      continue;
    }
    for (int m0 = 0; m0 < M; m0 += MC) {
      int me = M - m0 < MC ? M : m0 + MC;
      for (int p = 0; p < np; p++) {
        int n0 = p * NR;
        int nv = N - n0 < NR ? N - n0 : NR;
        V bv[2];
        if (bs) {
          bv[0] = load4n(bs + n0, nv);
          bv[1] = load4n(bs + n0 + 4, nv - 4);
        } else {
          bv[0] = bv[1] = wasm_f32x4_splat(0.0f);
        }
        const float *B = Bp + (p * K + k0) * NR;
        const float *a = A + m0 * lda + k0;
        float *c = C + m0 * ldc + n0;
        int m = m0;
        for (; m + 4 <= me; m += 4) {
          kern4(kb, a, lda, B, c, ldc, bv, acc, nv);
          a += 4 * lda;
          c += 4 * ldc;
        }
        switch (me - m) {
          case 3: kern3(kb, a, lda, B, c, ldc, bv, acc, nv); break;
          case 2: kern2(kb, a, lda, B, c, ldc, bv, acc, nv); break;
          case 1: kern1(kb, a, B, c, bv, acc, nv); break;
          default: break;
        }
      }
    }
    k0 += kb;
  } while (k0 < K);
}

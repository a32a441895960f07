//! The ISA-independent part of the SIMD kernels: the register-tiled microkernel, the driver
//! that covers an output matrix with tiles, and the const-generic single-row kernel behind
//! [`FixedDense`](super::FixedDense).
//!
//! Each instruction set (a module of `kernel::isa`) implements [`Simd`] with
//! `#[inline(always)]` wrappers around its intrinsics and instantiates [`tile_body`],
//! [`small_body`] and [`fixed_body`] through [`trampolines!`], inside functions compiled with
//! its `#[target_feature]`, so that every intrinsic is inlined into code built for that
//! instruction set.
//!
//! # Arithmetic
//! One SIMD lane holds one output column of one row: lane `c` of accumulator `(r, v)` is the
//! running FMA chain of output `(row r, column v·L + c)`. The contraction over `k` runs in
//! increasing order, one fused multiply-add per step, starting from `+0.0`; the bias is added
//! once afterwards and the activation applied last. No lane ever mixes two `k` terms other
//! than through that chain, so every path produces the bits of
//! `reference::dense_reference`.

// Only the scalar path exists on other architectures.
#![cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]

use std::ptr;

/// A microkernel instantiation: computes one tile described by a [`Tile`].
pub(crate) type TileFn = unsafe fn(&Tile);

/// A whole-problem driver for one instruction set.
pub(crate) type DriveFn = unsafe fn(&Geometry);

/// A whole-problem driver with an explicit output row stride `ldy` (see [`drive_ldy`]): the
/// same tiles and the same bits as the [`DriveFn`] of its instruction set, which is this
/// with `ldy = g.f`.
pub(crate) type DriveLdyFn = unsafe fn(&Geometry, usize);

/// A single-row kernel for a compile-time shape: `(w, bias, x, y, relu)`, with `w` and `bias`
/// in the packed layout of the instruction set (see [`Geometry`]).
pub(crate) type FixedFn = unsafe fn(*const f32, *const f32, *const f32, *mut f32, bool);

/// A whole Dense problem `y = act(x·W + b)` in raw-pointer form.
///
/// Layout of the weights, with `L` the lane count of the instruction set (1 for the scalar
/// path): element `W[k, j]` lives at `w + (j / L)·wv + k·ldw + j % L`. Row-major `(D, F)`
/// weights are `ldw = F, wv = L`; packed column panels are `ldw = L, wv = D·L`.
///
/// # Invariants (the callers' obligations, relied upon by every driver)
/// - `x` is valid for reads of `n·d` floats (row-major `(n, d)`),
/// - every `W[k, j]`, `k < d`, `j < f` is valid for reads at the address above; if `padded`,
///   so is every `j < round_up(f, L)`,
/// - `bias` is null or valid for reads of `f` floats (`round_up(f, L)` if `padded`),
/// - `y` is valid for writes of `n·f` floats (row-major `(n, f)`) and overlaps none of the
///   inputs,
/// - the instruction set of the driver is available on this CPU.
///
/// A [`DriveLdyFn`] takes the output row stride `ldy` as an argument instead (row `r` of `y`
/// starts at `y + r·ldy`; a `DriveFn` is the case `ldy = f`), and then needs, in place of the
/// `y` invariant above, `y + r·ldy + j` valid for writes for every `r < n`, `j < f`, none of
/// them overlapping the inputs. It writes exactly those floats and no other (a column range
/// of a wider output can so be computed while other threads write the other columns). The
/// stride is an argument, not a field, so that every `Geometry { .. }` literal in the crate
/// keeps its meaning.
///
/// `rev` asks for the column tiles from the last to the first (see module `sweep`). Every
/// output is one tile's own chain whatever the order, so the bits do not depend on it; a
/// driver without tiles may ignore it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geometry {
    pub n: usize,
    pub d: usize,
    pub f: usize,
    pub x: *const f32,
    pub w: *const f32,
    pub ldw: usize,
    pub wv: usize,
    pub bias: *const f32,
    pub padded: bool,
    pub y: *mut f32,
    pub relu: bool,
    pub rev: bool,
}

impl Geometry {
    /// A copy read field by field. The caller has just written `self` with one store per
    /// field; letting the compiler copy it with wider loads spanning two such stores defeats
    /// store-to-load forwarding (a ~20-cycle stall per call, measured on Zen 4), which matters
    /// for tiny shapes. Volatile reads keep one load per field.
    #[inline(always)]
    fn reload(&self) -> Geometry {
        // SAFETY: reads of the fields of a valid reference.
        unsafe {
            Geometry {
                n: ptr::read_volatile(&self.n),
                d: ptr::read_volatile(&self.d),
                f: ptr::read_volatile(&self.f),
                x: ptr::read_volatile(&self.x),
                w: ptr::read_volatile(&self.w),
                ldw: ptr::read_volatile(&self.ldw),
                wv: ptr::read_volatile(&self.wv),
                bias: ptr::read_volatile(&self.bias),
                padded: ptr::read_volatile(&self.padded),
                y: ptr::read_volatile(&self.y),
                relu: ptr::read_volatile(&self.relu),
                rev: ptr::read_volatile(&self.rev),
            }
        }
    }
}

/// One register tile: `MR` rows × `NV` vectors of `L` columns, over the whole contraction.
///
/// `x`, `w`, `bias` and `y` point at the tile's first row/column; the strides are those of
/// [`Geometry`] (`ldx = d`, `ldy = f`). `rem` (1..=L) is the number of valid lanes of the
/// last vector when the tile is partial.
///
/// A tile may also cover only a block of the contraction (`x` and `w` then point at its
/// first `k`): with `acc_in` the accumulators start from the values in `y` (the chain so far)
/// instead of `+0.0`, and without `epi` the raw accumulators are stored, without bias or
/// activation. An f32 store and reload is exact, so a chain cut into consecutive blocks this
/// way is the same chain.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tile {
    pub k: usize,
    pub x: *const f32,
    pub ldx: usize,
    pub w: *const f32,
    pub ldw: usize,
    pub wv: usize,
    pub bias: *const f32,
    pub y: *mut f32,
    pub ldy: usize,
    pub rem: usize,
    pub relu: bool,
    pub acc_in: bool,
    pub epi: bool,
}

/// The primitive operations of one SIMD instruction set.
///
/// Every method is `#[inline(always)]` in the implementations and is only ever reached from
/// a function compiled with the instruction set's `#[target_feature]`, itself only called
/// after the feature was detected at run time.
pub(crate) trait Simd {
    /// A vector of `L` f32 lanes.
    type V: Copy;
    /// Lanes per vector.
    const L: usize;

    /// Tile plan for `n` rows: `(vectors per column tile, rows per tile)`.
    /// Every `(mr, nv)` with `mr <= rows`, `nv <= vectors` must be in [`Simd::tile_fn`].
    fn plan(n: usize) -> (usize, usize);

    /// The microkernel for `mr × nv` with partial last-vector loads (`ld`) and/or stores
    /// (`st`), or `None` if that instantiation does not exist.
    fn tile_fn(mr: usize, nv: usize, ld: bool, st: bool) -> Option<TileFn>;

    /// All lanes `+0.0`.
    ///
    /// # Safety
    /// The instruction set must be available.
    unsafe fn zero() -> Self::V;
    /// Loads `L` floats.
    ///
    /// # Safety
    /// `p` valid for reads of `L` floats; instruction set available.
    unsafe fn load(p: *const f32) -> Self::V;
    /// Loads the first `rem` (1..=L) floats, the other lanes `+0.0`.
    ///
    /// # Safety
    /// `p` valid for reads of `rem` floats; instruction set available.
    unsafe fn load_part(p: *const f32, rem: usize) -> Self::V;
    /// Broadcasts `*p` to every lane.
    ///
    /// # Safety
    /// `p` valid for reads of one float; instruction set available.
    unsafe fn splat(p: *const f32) -> Self::V;
    /// `acc + a·b` with a single rounding, lane by lane.
    ///
    /// # Safety
    /// Instruction set available.
    unsafe fn fma(acc: Self::V, a: Self::V, b: Self::V) -> Self::V;
    /// `a + b`, lane by lane.
    ///
    /// # Safety
    /// Instruction set available.
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
    /// `if a < 0 { 0 } else { a }` with an ordered compare: NaN and `-0.0` pass through.
    ///
    /// # Safety
    /// Instruction set available.
    unsafe fn relu(a: Self::V) -> Self::V;
    /// NaN lanes become the canonical quiet NaN `f32::NAN` (`0x7FC0_0000`); other lanes are
    /// unchanged. Which NaN an FMA returns depends on its operand order, which compilers may
    /// commute, and on the CPU (x86 and ARM make different default NaNs): canonical NaNs
    /// keep every path and machine bit-identical.
    ///
    /// # Safety
    /// Instruction set available.
    unsafe fn canon_nan(a: Self::V) -> Self::V;
    /// Stores `L` floats.
    ///
    /// # Safety
    /// `p` valid for writes of `L` floats; instruction set available.
    unsafe fn store(p: *mut f32, v: Self::V);
    /// Stores the first `rem` (1..=L) lanes.
    ///
    /// # Safety
    /// `p` valid for writes of `rem` floats; instruction set available.
    unsafe fn store_part(p: *mut f32, v: Self::V, rem: usize);
}

/// Generates [`Simd::tile_fn`]: a `match` from `(mr, nv, ld, st)` to the instantiations of
/// the trampoline `$tramp::<MR, NV, LD, ST>` for the listed `MR x NV` pairs.
///
/// `rows6_vecs4` names the list of a 32-register instruction set (AVX-512, NEON), whose
/// [`Simd::plan`] is 6 rows × 4 vectors, or one row of up to 8 vectors: every tile up to
/// 6 × 4 (the edges of the problem) and one-row tiles up to 8 vectors.
macro_rules! tile_table {
    ($tramp:ident, $mr:expr, $nv:expr, $ld:expr, $st:expr; rows6_vecs4) => {
        $crate::kernel::simd::tile_table!($tramp, $mr, $nv, $ld, $st;
            1 x 1, 2 x 1, 3 x 1, 4 x 1, 5 x 1, 6 x 1,
            1 x 2, 2 x 2, 3 x 2, 4 x 2, 5 x 2, 6 x 2,
            1 x 3, 2 x 3, 3 x 3, 4 x 3, 5 x 3, 6 x 3,
            1 x 4, 2 x 4, 3 x 4, 4 x 4, 5 x 4, 6 x 4,
            1 x 5, 1 x 6, 1 x 7, 1 x 8)
    };
    ($tramp:ident, $mr:expr, $nv:expr, $ld:expr, $st:expr; $($m:literal x $n:literal),* $(,)?) => {
        match ($mr, $nv, $ld, $st) {
            $(
                ($m, $n, false, false) => Some($tramp::<$m, $n, false, false> as $crate::kernel::simd::TileFn),
                ($m, $n, false, true) => Some($tramp::<$m, $n, false, true> as $crate::kernel::simd::TileFn),
                ($m, $n, true, true) => Some($tramp::<$m, $n, true, true> as $crate::kernel::simd::TileFn),
            )*
            _ => None,
        }
    };
}
pub(crate) use tile_table;

/// The microkernel: `MR × NV` accumulators in registers, one FMA per `(row, vector, k)`.
///
/// `LD`: the last vector's weights and bias are loaded partially (`t.rem` lanes; unpadded
/// row-major weights). `ST`: the last vector is stored partially.
///
/// # Safety
/// `t` describes a tile of a problem satisfying the [`Geometry`] invariants: rows
/// `0..MR` of `x`/`y` and columns `0..(NV-1)·L + rem` of `w`/`bias`/`y` (relative to the
/// tile's pointers) are in bounds (columns up to `NV·L` for loads when `!LD`, for stores when
/// `!ST`), and `S`'s instruction set is available.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
pub(crate) unsafe fn tile_body<S: Simd, const MR: usize, const NV: usize, const LD: bool, const ST: bool>(t: &Tile) {
    // SAFETY: instruction set available (caller's contract).
    let zero = unsafe { S::zero() };
    let mut acc = [[zero; NV]; MR];
    if t.acc_in {
        for r in 0..MR {
            for v in 0..NV {
                let p = t.y.wrapping_add(r * t.ldy + v * S::L);
                // SAFETY: y[r, v·L ..] is in bounds for L floats, or `rem` floats when this is
                // the partial last vector (`ST`), like the stores below.
                acc[r][v] = unsafe {
                    if ST && v + 1 == NV {
                        S::load_part(p, t.rem)
                    } else {
                        S::load(p)
                    }
                };
            }
        }
    }
    for kk in 0..t.k {
        let wk = t.w.wrapping_add(kk * t.ldw);
        let mut wv = [zero; NV];
        for v in 0..NV {
            let p = wk.wrapping_add(v * t.wv);
            // SAFETY: `p` is W[kk, v·L] of the tile: in bounds for L floats (padded panels or
            // a full vector), or for `rem` floats when this is the partial last vector (`LD`).
            wv[v] = unsafe {
                if LD && v + 1 == NV {
                    S::load_part(p, t.rem)
                } else {
                    S::load(p)
                }
            };
        }
        for r in 0..MR {
            // SAFETY: x[r, kk] with r < MR rows of the tile and kk < d: in bounds.
            let xb = unsafe { S::splat(t.x.wrapping_add(r * t.ldx + kk)) };
            for v in 0..NV {
                // SAFETY: instruction set available.
                acc[r][v] = unsafe { S::fma(acc[r][v], xb, wv[v]) };
            }
        }
    }
    let has_bias = !t.bias.is_null();
    for r in 0..MR {
        let yr = t.y.wrapping_add(r * t.ldy);
        for v in 0..NV {
            let last = v + 1 == NV;
            let mut a = acc[r][v];
            if t.epi && has_bias {
                let bp = t.bias.wrapping_add(v * S::L);
                // SAFETY: bias columns of vector v: in bounds for L floats, or `rem` when
                // partial and unpadded (`LD`); instruction set available.
                a = unsafe {
                    let b = if LD && last { S::load_part(bp, t.rem) } else { S::load(bp) };
                    S::add(a, b)
                };
            }
            if t.epi && t.relu {
                // SAFETY: instruction set available.
                a = unsafe { S::relu(a) };
            }
            if t.epi {
                // SAFETY: instruction set available.
                a = unsafe { S::canon_nan(a) };
            }
            let yp = yr.wrapping_add(v * S::L);
            // SAFETY: y[r, v·L ..] is in bounds for L floats, or `rem` floats when this is
            // the partial last vector (`ST`).
            unsafe {
                if ST && last {
                    S::store_part(yp, a, t.rem)
                } else {
                    S::store(yp, a)
                }
            }
        }
    }
}

/// Runs one tile with `f`, or, if that instantiation does not exist, as `mr·nv` tiles of one
/// row and one vector (each output's chain is independent, so the bits are the same).
///
/// # Safety
/// As [`tile_body`] for an `mr × nv` tile with partial flags `ld`/`st`.
#[inline(always)]
unsafe fn run_tile<S: Simd>(f: Option<TileFn>, t: &Tile, mr: usize, nv: usize, ld: bool, st: bool) {
    match f {
        // SAFETY: forwarded contract.
        Some(f) => unsafe { f(t) },
        // SAFETY: forwarded contract.
        None => unsafe { split_tile::<S>(t, mr, nv, ld, st) },
    }
}

/// [`run_tile`] without an instantiation: `mr·nv` tiles of one row and one vector.
///
/// # Safety
/// As [`tile_body`] for an `mr × nv` tile with partial flags `ld`/`st`.
#[cold]
#[inline(never)]
unsafe fn split_tile<S: Simd>(t: &Tile, mr: usize, nv: usize, ld: bool, st: bool) {
    for r in 0..mr {
        for v in 0..nv {
            let last = v + 1 == nv;
            let (ldv, stv) = (ld && last, st && last);
            let sub = Tile {
                x: t.x.wrapping_add(r * t.ldx),
                w: t.w.wrapping_add(v * t.wv),
                bias: if t.bias.is_null() { ptr::null() } else { t.bias.wrapping_add(v * S::L) },
                y: t.y.wrapping_add(r * t.ldy + v * S::L),
                rem: if stv { t.rem } else { S::L },
                ..*t
            };
            match S::tile_fn(1, 1, ldv, stv) {
                // SAFETY: a sub-tile of the caller's tile, so in bounds by its contract.
                Some(f) => unsafe { f(&sub) },
                // SAFETY: as above.
                None => unsafe { tile_scalar(&sub, S::L, if stv { sub.rem } else { S::L }) },
            }
        }
    }
}

/// Last-resort scalar version of a one-row, one-vector tile with `cols` valid columns.
///
/// # Safety
/// As [`tile_body`] for a `1 × 1` tile with `cols` valid columns.
unsafe fn tile_scalar(t: &Tile, lanes: usize, cols: usize) {
    debug_assert!(cols <= lanes);
    for c in 0..cols {
        // SAFETY: y[0, c] is in bounds (caller's contract).
        let mut acc = if t.acc_in { unsafe { *t.y.wrapping_add(c) } } else { 0.0f32 };
        for kk in 0..t.k {
            // SAFETY: x[0, kk] and W[kk, c] of the tile are in bounds (caller's contract).
            acc = unsafe { (*t.x.wrapping_add(kk)).mul_add(*t.w.wrapping_add(kk * t.ldw + c), acc) };
        }
        if t.epi && !t.bias.is_null() {
            // SAFETY: bias column c is in bounds.
            acc += unsafe { *t.bias.wrapping_add(c) };
        }
        if t.epi && t.relu && acc < 0.0 {
            acc = 0.0;
        }
        // SAFETY: y[0, c] is in bounds.
        unsafe { *t.y.wrapping_add(c) = acc };
    }
}

/// Covers the `(n, f)` output with tiles: column tiles outside (so a tile's weights are
/// reused from cache by every row block), row blocks inside; the column tiles from the last
/// to the first when `g.rev`.
///
/// # Safety
/// `g` satisfies the [`Geometry`] invariants for `S::L` lanes.
pub(crate) unsafe fn drive<S: Simd>(g: &Geometry) {
    let g = &g.reload();
    // SAFETY: forwarded contract; `ldy = f` is the row-major `(n, f)` output of the invariants.
    unsafe { drive_tiles::<S>(g, g.f) }
}

/// [`drive`] with output rows `ldy` floats apart (a [`DriveLdyFn`]): the same tiles, so the
/// same bits, written at `y + r·ldy + j` for `r < n`, `j < f` only.
///
/// # Safety
/// `g` satisfies the [`Geometry`] invariants for `S::L` lanes, with the `y` invariant of a
/// [`DriveLdyFn`] for `ldy`.
pub(crate) unsafe fn drive_ldy<S: Simd>(g: &Geometry, ldy: usize) {
    let g = &g.reload();
    // SAFETY: forwarded contract.
    unsafe { drive_tiles::<S>(g, ldy) }
}

/// The body of [`drive`] and [`drive_ldy`]: output row `r` starts at `g.y + r·ldy`.
///
/// # Safety
/// As [`drive_ldy`].
#[inline(always)]
unsafe fn drive_tiles<S: Simd>(g: &Geometry, ldy: usize) {
    let l = S::L;
    if g.n == 0 || g.f == 0 {
        return;
    }
    if !g.padded && g.n <= KBLOCK_MAX_N && g.d >= 2 * ROW_KB && g.d * g.f >= KBLOCK_MIN_W {
        // SAFETY: forwarded contract; one row block.
        unsafe { drive_kblocked::<S>(g, ldy) };
        return;
    }
    let (nvmax, mrmax) = S::plan(g.n);
    if !g.padded && copies_pay(g.n, g.f) && g.d * g.f >= KBLOCK_MIN_W && nvmax * l <= BLOCK_COLS {
        // SAFETY: forwarded contract; the tile width fits a block.
        unsafe { drive_copied_blocks::<S>(g, ldy) };
        return;
    }
    let tile_cols = nvmax * l;
    let tiles = g.f.div_ceil(tile_cols);
    for i in 0..tiles {
        let (j, _, nv, rem) = column_tile(i, tiles, tile_cols, g, l);
        let st = rem != l;
        let ld = st && !g.padded;
        let mut t = Tile {
            k: g.d,
            x: g.x,
            ldx: g.d,
            w: g.w.wrapping_add((j / l) * g.wv),
            ldw: g.ldw,
            wv: g.wv,
            bias: if g.bias.is_null() { ptr::null() } else { g.bias.wrapping_add(j) },
            y: g.y,
            ldy,
            rem,
            relu: g.relu,
            acc_in: false,
            epi: true,
        };
        let mr = mrmax.min(g.n);
        let full = S::tile_fn(mr, nv, ld, st);
        let mut i = 0;
        while i + mr <= g.n {
            t.x = g.x.wrapping_add(i * g.d);
            t.y = g.y.wrapping_add(i * ldy + j);
            // SAFETY: rows i..i+mr <= n and columns j..j+cols <= f (padded: loads up to nv·L
            // within the padded panels; stores stop at column f, partial when `st`); the
            // Geometry invariants (output rows `ldy` apart) give the bounds.
            unsafe { run_tile::<S>(full, &t, mr, nv, ld, st) };
            i += mr;
        }
        if i < g.n {
            let m = g.n - i;
            t.x = g.x.wrapping_add(i * g.d);
            t.y = g.y.wrapping_add(i * ldy + j);
            // SAFETY: as above with rows i..n.
            unsafe { run_tile::<S>(S::tile_fn(m, nv, ld, st), &t, m, nv, ld, st) };
        }
    }
}

/// Column tile `i` of the `tiles` that cover `g`'s output `tile_cols` at a time (tile
/// `tiles - 1 - i` when `g.rev`): its first column, its width, its vectors of `l` lanes and the
/// lanes of its last vector.
#[inline(always)]
fn column_tile(i: usize, tiles: usize, tile_cols: usize, g: &Geometry, l: usize) -> (usize, usize, usize, usize) {
    let j = if g.rev { tiles - 1 - i } else { i } * tile_cols;
    let cols = (g.f - j).min(tile_cols);
    let nv = cols.div_ceil(l);
    (j, cols, nv, cols - (nv - 1) * l)
}

/// Contraction block of [`drive_kblocked`].
const ROW_KB: usize = 4;

/// Weights (elements) from which [`drive_kblocked`] is used: past a typical L2, where
/// they stream from L3 or DRAM (in L2, plain column tiles are as fast).
const KBLOCK_MIN_W: usize = 1 << 18;

/// Rows up to which [`drive_kblocked`] is used (measured: it gains for 1–2 rows; with
/// more, the extra accumulator traffic costs more than the better weight streaming gains).
const KBLOCK_MAX_N: usize = 2;

/// A few rows (at most one row block) of large row-major (unpacked) weights: blocks of
/// [`ROW_KB`] consecutive `k` outside, column tiles inside, each output's chain carried in
/// `y` between blocks (see [`Tile`]). The weights are then read a few whole rows at a time —
/// sequential memory — instead of one tile-wide column strip per page, which hardware
/// prefetchers do not follow.
///
/// # Safety
/// `1 <= g.n <= S::plan(g.n).1` (one row block), and `g` satisfies the [`Geometry`] invariants for `S::L`
/// lanes with output rows `ldy` apart (as [`drive_ldy`]); the instruction set is available.
unsafe fn drive_kblocked<S: Simd>(g: &Geometry, ldy: usize) {
    let l = S::L;
    let (nvmax, _) = S::plan(g.n);
    let mr = g.n;
    let tile_cols = nvmax * l;
    let nfull = g.f / tile_cols;
    let cols = g.f - nfull * tile_cols;
    let last_nv = cols.div_ceil(l);
    let rem = if cols == 0 { l } else { cols - (last_nv - 1) * l };
    let st = rem != l;
    let ld = st && !g.padded;
    let full = S::tile_fn(mr, nvmax, false, false);
    let last = S::tile_fn(mr, last_nv.max(1), ld, st);
    let mut k0 = 0;
    while k0 < g.d {
        let kb = ROW_KB.min(g.d - k0);
        let mut t = Tile {
            k: kb,
            x: g.x.wrapping_add(k0),
            ldx: g.d,
            w: g.w,
            ldw: g.ldw,
            wv: g.wv,
            bias: g.bias,
            y: g.y,
            ldy,
            rem: l,
            relu: g.relu,
            acc_in: k0 > 0,
            epi: k0 + kb == g.d,
        };
        for i in 0..nfull {
            let j = i * tile_cols;
            t.w = g.w.wrapping_add((j / l) * g.wv + k0 * g.ldw);
            t.bias = if g.bias.is_null() { ptr::null() } else { g.bias.wrapping_add(j) };
            t.y = g.y.wrapping_add(j);
            // SAFETY: rows 0..n, columns j..j+tile_cols <= f, k rows k0..k0+kb <= d of W,
            // x[.., k0..k0+kb]; y[.., j..] is read back only after the block before wrote it.
            unsafe { run_tile::<S>(full, &t, mr, nvmax, false, false) };
        }
        if last_nv > 0 {
            let j = nfull * tile_cols;
            t.w = g.w.wrapping_add((j / l) * g.wv + k0 * g.ldw);
            t.bias = if g.bias.is_null() { ptr::null() } else { g.bias.wrapping_add(j) };
            t.y = g.y.wrapping_add(j);
            t.rem = rem;
            // SAFETY: as above for the last columns j..f, partial when `st`/`ld`.
            unsafe { run_tile::<S>(last, &t, mr, last_nv, ld, st) };
        }
        k0 += kb;
    }
}

/// Contraction rows of one block copied by [`drive_copied_blocks`].
const BLOCK_K: usize = 128;

/// The widest column tile [`drive_copied_blocks`] copies (AVX-512's: 4 vectors of 16).
const BLOCK_COLS: usize = 64;

/// Rows from which [`drive_copied_blocks`] is used for any width from [`BLOCK_MIN_F`]: the copy
/// of every weight, once a call, is then shared by enough row blocks (32×784×512: 0.80× the
/// time in place; 8×784×512 was no faster, 3×1024×256 3.3× slower; AVX-512).
const BLOCK_MIN_N: usize = 32;

/// Rows from which [`drive_copied_blocks`] is used when the weights' rows are a multiple of
/// 4 KiB apart (`f` a multiple of 1024): in place, every row of a tile's strip then falls in
/// the same L1 set (8×1024×1024: 0.73–0.83× the time in place, 16×1024×1024 0.58–0.77×).
const BLOCK_MIN_N_4K: usize = 8;

/// Output columns from which [`drive_copied_blocks`] is used: rows of the weights 1 KiB apart
/// or more, where a tile's strip crowds a few L1 sets (64×2048×96 read in place was as fast).
const BLOCK_MIN_F: usize = 256;

/// Whether an unpadded problem of `n` rows and `f` columns (with weights past L2) is driven
/// by [`drive_copied_blocks`].
pub(crate) fn copies_pay(n: usize, f: usize) -> bool {
    f >= BLOCK_MIN_F && (n >= BLOCK_MIN_N || (n >= BLOCK_MIN_N_4K && f.is_multiple_of(1024)))
}

/// Several rows of large row-major (unpacked) weights, as [`drive_tiles`] covers them (column
/// tiles outside, row blocks inside), but each column tile's weights are first copied, [`BLOCK_K`]
/// rows of the contraction at a time, into a contiguous block on the stack (32 KiB), which every
/// row block then reads; each output's chain is carried in `y` between blocks (see [`Tile`]).
/// Read in place, a tile's weights are a strip of rows `f` floats apart: at `f` = 1024 (4 KiB)
/// every row of the strip falls in the same few L1 sets, so each row block read them from L2
/// again. Same tiles and chains, so the same bits.
///
/// # Safety
/// As [`drive_ldy`], unpadded, with `S::plan(g.n)`'s tile width at most [`BLOCK_COLS`].
unsafe fn drive_copied_blocks<S: Simd>(g: &Geometry, ldy: usize) {
    let l = S::L;
    let (nvmax, mrmax) = S::plan(g.n);
    let tile_cols = nvmax * l;
    let mut block = [std::mem::MaybeUninit::<f32>::uninit(); BLOCK_K * BLOCK_COLS];
    let tiles = g.f.div_ceil(tile_cols);
    let mr = mrmax.min(g.n);
    for i in 0..tiles {
        let (j, cols, nv, rem) = column_tile(i, tiles, tile_cols, g, l);
        // Partial last vectors are loaded partially (the block's lanes past `cols` are never
        // written), and stored partially.
        let st = rem != l;
        let full = S::tile_fn(mr, nv, st, st);
        let tail = g.n % mr;
        let last = if tail == 0 { None } else { S::tile_fn(tail, nv, st, st) };
        let mut k0 = 0;
        while k0 < g.d {
            let kb = BLOCK_K.min(g.d - k0);
            for k in 0..kb {
                // SAFETY: W[k0 + k, j..j + cols] is in bounds (k0 + k < d, j + cols <= f, rows
                // `ldw = f` apart: the unpadded Geometry invariants); the block's row k holds
                // `tile_cols >= cols` floats (kb <= BLOCK_K, tile_cols <= BLOCK_COLS). A plain
                // copy: this driver has no `#[target_feature]` for the vector loads to inline.
                unsafe {
                    ptr::copy_nonoverlapping(
                        g.w.add((k0 + k) * g.ldw + j),
                        block.as_mut_ptr().add(k * tile_cols).cast::<f32>(),
                        cols,
                    );
                }
            }
            let mut t = Tile {
                k: kb,
                x: g.x.wrapping_add(k0),
                ldx: g.d,
                w: block.as_ptr().cast::<f32>(),
                ldw: tile_cols,
                wv: l,
                bias: if g.bias.is_null() { ptr::null() } else { g.bias.wrapping_add(j) },
                y: g.y,
                ldy,
                rem,
                relu: g.relu,
                acc_in: k0 > 0,
                epi: k0 + kb == g.d,
            };
            let mut r = 0;
            while r + mr <= g.n {
                t.x = g.x.wrapping_add(r * g.d + k0);
                t.y = g.y.wrapping_add(r * ldy + j);
                // SAFETY: rows r..r+mr <= n, columns j..j+cols <= f of y and the bias; the
                // tile reads block rows 0..kb, vectors 0..nv (the last one `rem` lanes when
                // partial): all written above; x[r.., k0..k0+kb] in bounds; y[.., j..] is read
                // back (`acc_in`) only after the block before wrote it.
                unsafe { run_tile::<S>(full, &t, mr, nv, st, st) };
                r += mr;
            }
            if tail > 0 {
                t.x = g.x.wrapping_add(r * g.d + k0);
                t.y = g.y.wrapping_add(r * ldy + j);
                // SAFETY: as above with rows r..n.
                unsafe { run_tile::<S>(last, &t, tail, nv, st, st) };
            }
            k0 += kb;
        }
    }
}

/// A single-tile, single-row kernel (`F <= 8` vectors): `(w, bias, x, y, d, rem)`, with `rem`
/// the lanes of the last vector. Chosen at construction by `PackedDense` (packed panels) or
/// by one table lookup in `dense` (row-major weights), so that one row is one indirect call
/// into fully inlined code.
pub(crate) type SmallFn = unsafe fn(*const f32, *const f32, *const f32, *mut f32, usize, usize);

/// Table of [`SmallFn`]s: `[(nv - 1) * 2 + partial][relu]` for `nv` in `1..=8`.
pub(crate) type SmallTable = [[SmallFn; 2]; 16];

/// Index of the [`SmallTable`] entry for `f` columns of `lanes`-wide vectors, `1 <= f <= 8·lanes`.
#[inline]
pub(crate) fn small_index(f: usize, lanes: usize) -> (usize, usize) {
    let nv = f.div_ceil(lanes);
    let rem = f - (nv - 1) * lanes;
    ((nv - 1) * 2 + usize::from(rem != lanes), rem)
}

/// Generates a [`SmallTable`] `static $name` of the instantiations of the trampoline
/// `$tramp::<NV, ST, ROWMAJOR, RELU>` (see [`small_body`]) for one weight layout.
macro_rules! small_table {
    ($name:ident, $tramp:ident, $rowmajor:literal; $($n:literal)*) => {
        pub(crate) static $name: $crate::kernel::simd::SmallTable = [
            $(
                [
                    $tramp::<$n, false, $rowmajor, false> as $crate::kernel::simd::SmallFn,
                    $tramp::<$n, false, $rowmajor, true> as $crate::kernel::simd::SmallFn,
                ],
                [
                    $tramp::<$n, true, $rowmajor, false> as $crate::kernel::simd::SmallFn,
                    $tramp::<$n, true, $rowmajor, true> as $crate::kernel::simd::SmallFn,
                ],
            )*
        ];
    };
}
pub(crate) use small_table;

/// The per-instruction-set code of the SIMD paths, written once: invoked in the module of an
/// instruction set `$S` (a [`Simd`] type) with its `#[target_feature]` string, it defines the
/// functions that instantiate this module's generic bodies inside code compiled for that
/// instruction set, so that every `#[inline(always)]` intrinsic wrapper of `$S` is inlined:
///
/// - `tile::<MR, NV, LD, ST>`: the microkernel [`tile_body`] (for `$S`'s [`Simd::tile_fn`],
///   through [`tile_table!`]),
/// - `small::<NV, ST, ROWMAJOR, RELU>` and its [`SmallTable`]s `SMALL_PACKED` and
///   `SMALL_ROWMAJOR`: the single-tile row kernels [`small_body`],
/// - `fixed::<D, F>`: the single-row kernel [`fixed_body`] for a compile-time shape.
///
/// - `drive` and `drive_ldy`: [`drive`]`::<$S>` and [`drive_ldy`]`::<$S>` (no
///   `#[target_feature]`: they call the tiles through [`Simd::tile_fn`]),
/// - `simd_kernels(narrow)`: the instruction set's table of
///   [`Kernels`](crate::kernel::isa::Kernels), with its narrow kernels `narrow`.
macro_rules! trampolines {
    ($S:ty, $feature:literal) => {
        /// The whole-problem driver of this instruction set (a
        /// [`DriveFn`](crate::kernel::simd::DriveFn)).
        ///
        /// # Safety
        /// The instruction set available and `g` satisfies the
        /// [`Geometry`](crate::kernel::simd::Geometry) invariants for its lanes.
        unsafe fn drive(g: &$crate::kernel::simd::Geometry) {
            // SAFETY: forwarded contract.
            unsafe { $crate::kernel::simd::drive::<$S>(g) }
        }

        /// [`drive`] with output rows `ldy` floats apart (a
        /// [`DriveLdyFn`](crate::kernel::simd::DriveLdyFn)).
        ///
        /// # Safety
        /// As `drive`, with the `y` invariant of a `DriveLdyFn` for `ldy`.
        unsafe fn drive_ldy(g: &$crate::kernel::simd::Geometry, ldy: usize) {
            // SAFETY: forwarded contract.
            unsafe { $crate::kernel::simd::drive_ldy::<$S>(g, ldy) }
        }

        /// This instruction set's kernels, with the narrow kernels `narrow` (module `small`).
        const fn simd_kernels(
            narrow: &'static [$crate::kernel::small::NarrowTable],
        ) -> $crate::kernel::isa::Kernels {
            $crate::kernel::isa::Kernels {
                lanes: <$S as $crate::kernel::simd::Simd>::L,
                drive,
                drive_ldy,
                col_tile: $crate::kernel::simd::col_tile::<$S>,
                small_packed: Some(&SMALL_PACKED),
                small_rowmajor: Some(&SMALL_ROWMAJOR),
                narrow,
            }
        }

        /// The microkernel [`tile_body`](crate::kernel::simd::tile_body) of this instruction set.
        ///
        /// # Safety
        /// The instruction set available and `t` as required by `tile_body`.
        #[target_feature(enable = $feature)]
        unsafe fn tile<const MR: usize, const NV: usize, const LD: bool, const ST: bool>(
            t: &$crate::kernel::simd::Tile,
        ) {
            // SAFETY: forwarded contract; this function is compiled with the instruction set.
            unsafe { $crate::kernel::simd::tile_body::<$S, MR, NV, LD, ST>(t) }
        }

        /// The single-tile row kernel [`small_body`](crate::kernel::simd::small_body) of this
        /// instruction set (a [`SmallFn`](crate::kernel::simd::SmallFn)).
        ///
        /// # Safety
        /// The instruction set available and the arguments as required by `small_body`.
        #[target_feature(enable = $feature)]
        unsafe fn small<const NV: usize, const ST: bool, const ROWMAJOR: bool, const RELU: bool>(
            w: *const f32,
            bias: *const f32,
            x: *const f32,
            y: *mut f32,
            d: usize,
            rem: usize,
        ) {
            // SAFETY: forwarded contract; compiled with the instruction set.
            unsafe { $crate::kernel::simd::small_body::<$S, NV, ST, ROWMAJOR, RELU>(w, bias, x, y, d, rem) }
        }

        $crate::kernel::simd::small_table!(SMALL_PACKED, small, false; 1 2 3 4 5 6 7 8);
        $crate::kernel::simd::small_table!(SMALL_ROWMAJOR, small, true; 1 2 3 4 5 6 7 8);

        /// The single-row kernel [`fixed_body`](crate::kernel::simd::fixed_body) of this
        /// instruction set for a `D → F` shape on its packed panels (a
        /// [`FixedFn`](crate::kernel::simd::FixedFn)).
        ///
        /// # Safety
        /// The instruction set available and the arguments as required by `fixed_body`.
        #[target_feature(enable = $feature)]
        pub(crate) unsafe fn fixed<const D: usize, const F: usize>(
            w: *const f32,
            bias: *const f32,
            x: *const f32,
            y: *mut f32,
            relu: bool,
        ) {
            // SAFETY: forwarded contract; the tile table covers (1, 1..=8).
            unsafe { $crate::kernel::simd::fixed_body::<$S, D, F, 8>(w, bias, x, y, relu) }
        }
    };
}
pub(crate) use trampolines;

/// Columns of one register tile of the driver of `S` for `n` rows: `L` times the vectors of
/// [`Simd::plan`]. A whole number of panels.
pub(crate) fn col_tile<S: Simd>(n: usize) -> usize {
    S::plan(n).0 * S::L
}

/// Body of a [`SmallFn`]: one tile of one row and `NV` vectors, `f = (NV-1)·L + rem` columns
/// (`rem == L` unless `ST`). `ROWMAJOR`: `w` is row-major `(d, f)` and `bias` has `f` floats
/// (the last vector is loaded partially when `ST`); otherwise both are packed padded panels.
///
/// # Safety
/// `w`/`bias` (or null) as described, `x` valid for `d` reads, `y` for `f` writes, `1 <= rem
/// <= L`; the instruction set is available.
#[inline(always)]
pub(crate) unsafe fn small_body<S: Simd, const NV: usize, const ST: bool, const ROWMAJOR: bool, const RELU: bool>(
    w: *const f32,
    bias: *const f32,
    x: *const f32,
    y: *mut f32,
    d: usize,
    rem: usize,
) {
    let (ldw, wv) = if ROWMAJOR { ((NV - 1) * S::L + rem, S::L) } else { (S::L, d * S::L) };
    let t = Tile { k: d, x, ldx: d, w, ldw, wv, bias, y, ldy: 0, rem, relu: RELU, acc_in: false, epi: true };
    if ROWMAJOR && ST {
        // SAFETY: one row, columns 0..f of row-major weights (partial loads of the last
        // vector), per the caller's contract.
        unsafe { tile_body::<S, 1, NV, true, true>(&t) }
    } else {
        // SAFETY: one row, columns 0..f (full vectors, or padded panels), per the contract.
        unsafe { tile_body::<S, 1, NV, false, ST>(&t) }
    }
}

/// The single-row kernel for a compile-time shape `D → F` on packed panels: column tiles of
/// `NVMAX` vectors, then one partial tile. With `D` and `F` constants and everything inlined,
/// rustc/LLVM resolve the tiling at compile time and unroll the contraction for small `D`.
///
/// # Safety
/// `w`/`bias` are the packed panels (`ldw = L`, `wv = D·L`, padded) of a `D × F` weight and
/// its bias (or null), `x` is valid for `D` reads, `y` for `F` writes, the instruction set
/// is available, and `S::tile_fn` covers `(1, 1..=NVMAX)`.
#[inline(always)]
pub(crate) unsafe fn fixed_body<S: Simd, const D: usize, const F: usize, const NVMAX: usize>(
    w: *const f32,
    bias: *const f32,
    x: *const f32,
    y: *mut f32,
    relu: bool,
) {
    let l = S::L;
    let tile_cols = NVMAX * l;
    let full = F / tile_cols;
    let mut t = Tile { k: D, x, ldx: D, w, ldw: l, wv: D * l, bias, y, ldy: F, rem: l, relu, acc_in: false, epi: true };
    let tile_at = |t: &mut Tile, j: usize| {
        t.w = w.wrapping_add((j / l) * D * l);
        t.bias = if bias.is_null() { ptr::null() } else { bias.wrapping_add(j) };
        t.y = y.wrapping_add(j);
    };
    for i in 0..full {
        tile_at(&mut t, i * tile_cols);
        // SAFETY: columns i·tile_cols .. +tile_cols <= F, all within the padded panels.
        unsafe { tile_body::<S, 1, NVMAX, false, false>(&t) };
    }
    let j = full * tile_cols;
    let cols = F - j;
    if cols == 0 {
        return;
    }
    tile_at(&mut t, j);
    let nv = cols.div_ceil(l);
    t.rem = cols - (nv - 1) * l;
    let st = t.rem != l;
    macro_rules! rem_tile {
        ($($n:literal)*) => {
            match (nv, st) {
                $(
                    // SAFETY: columns j..F within the padded panels; partial store when `st`.
                    ($n, false) => unsafe { tile_body::<S, 1, $n, false, false>(&t) },
                    // SAFETY: as above.
                    ($n, true) => unsafe { tile_body::<S, 1, $n, false, true>(&t) },
                )*
                // SAFETY: as above (any shape the table lacks is split into 1x1 tiles).
                _ => unsafe { run_tile::<S>(None, &t, 1, nv, false, st) },
            }
        };
    }
    if NVMAX >= 8 {
        rem_tile!(1 2 3 4 5 6 7);
    } else {
        // SAFETY: as above.
        unsafe { run_tile::<S>(S::tile_fn(1, nv, false, st), &t, 1, nv, false, st) };
    }
}

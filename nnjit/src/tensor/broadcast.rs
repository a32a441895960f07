//! NumPy broadcasting: result shapes and per-input element offsets.

/// The broadcast shape of `a` and `b` (NumPy rules), or `None` if they do not broadcast.
pub(crate) fn shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for (i, o) in out.iter_mut().enumerate() {
        let da = dim_from_right(a, rank - 1 - i);
        let db = dim_from_right(b, rank - 1 - i);
        *o = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

fn dim_from_right(s: &[usize], from_right: usize) -> usize {
    if from_right < s.len() {
        s[s.len() - 1 - from_right]
    } else {
        1
    }
}

/// How one input is read while iterating a broadcast output in row-major order.
pub(crate) enum Reader {
    /// Same shape as the output: element `i` for output `i`.
    Same,
    /// One element, read for every output.
    Scalar,
    /// Element strides per output axis (0 where the input is broadcast).
    Strided(Vec<usize>),
}

impl Reader {
    pub(crate) fn new(input: &[usize], out: &[usize]) -> Reader {
        if input == out {
            return Reader::Same;
        }
        if input.iter().product::<usize>() == 1 {
            return Reader::Scalar;
        }
        let rank = out.len();
        let mut strides = vec![0; rank];
        let mut stride = 1;
        for i in (0..rank).rev() {
            let d = dim_from_right(input, rank - 1 - i);
            if d != 1 {
                strides[i] = stride;
            }
            stride *= d;
        }
        Reader::Strided(strides)
    }
}

/// Calls `f(i, offsets)` for every output element `i` in row-major order, with the element
/// offset of each input (readers built by [`Reader::new`] for `out`).
pub(crate) fn for_each<const K: usize>(out: &[usize], readers: &[Reader; K], mut f: impl FnMut(usize, [usize; K])) {
    let n: usize = out.iter().product();
    if readers.iter().all(|r| !matches!(r, Reader::Strided(_))) {
        for i in 0..n {
            f(i, std::array::from_fn(|k| if matches!(readers[k], Reader::Same) { i } else { 0 }));
        }
        return;
    }
    let rank = out.len();
    let mut index = vec![0usize; rank];
    let mut offs = [0usize; K];
    for i in 0..n {
        let cur: [usize; K] = std::array::from_fn(|k| match &readers[k] {
            Reader::Same => i,
            Reader::Scalar => 0,
            Reader::Strided(_) => offs[k],
        });
        f(i, cur);
        // Odometer step: bump the last axis, carry into earlier ones.
        for ax in (0..rank).rev() {
            index[ax] += 1;
            for (k, r) in readers.iter().enumerate() {
                if let Reader::Strided(s) = r {
                    offs[k] += s[ax];
                }
            }
            if index[ax] < out[ax] {
                break;
            }
            for (k, r) in readers.iter().enumerate() {
                if let Reader::Strided(s) = r {
                    offs[k] -= s[ax] * out[ax];
                }
            }
            index[ax] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_follow_numpy() {
        assert_eq!(shapes(&[2, 3], &[3]), Some(vec![2, 3]));
        assert_eq!(shapes(&[2, 1], &[1, 4]), Some(vec![2, 4]));
        assert_eq!(shapes(&[], &[5]), Some(vec![5]));
        assert_eq!(shapes(&[2, 3], &[2]), None);
    }

    #[test]
    fn offsets() {
        let out = [2, 3];
        let rs = [Reader::new(&[2, 1], &out), Reader::new(&[3], &out)];
        let mut seen = vec![];
        for_each(&out, &rs, |i, [a, b]| seen.push((i, a, b)));
        assert_eq!(seen, [(0, 0, 0), (1, 0, 1), (2, 0, 2), (3, 1, 0), (4, 1, 1), (5, 1, 2)]);
    }
}

// Short rows (at most kMaxShortVectors SIMD vectors, e.g. C <= 64 in float with AVX-512): the same
// sums as the general loops of rows_impl.h, with the row held in registers (an array of NV vectors
// unrolled at compile time) instead of being stored to and reloaded from the scratch row, and with
// no loop or chunk bookkeeping. Included by rows_impl.h, inside its namespaces, after its helpers.
//
// The last vector holds `rest` = C - (NV - 1) W columns (1 <= rest <= W), kept by `keep`.

constexpr int kMaxShortVectors = 4;

template <typename T, int NV>
RowSums<T> row_sums_short(const ForwardRows<T>& a, int64_t v, const Vec<T>& keep) {
  constexpr int64_t W = Vec<T>::size();
  const int64_t C = a.cols, rest = C - (NV - 1) * W, last = (NV - 1) * W;
  const bool whole = v * C + NV * W <= a.rows * C;
  const Vec<T> neg_inf(-std::numeric_limits<T>::infinity()), zero(T(0));
  const T* t = a.t + v * C;
  const T* z = a.z + v * C;
  const Vec<T> inv_tau(T(1) / a.tau[v]);
  Vec<T> s[NV], zv[NV];
  for (int k = 0; k < NV - 1; ++k) {
    s[k] = Vec<T>::loadu(t + k * W) * inv_tau;
    zv[k] = Vec<T>::loadu(z + k * W);
  }
  s[NV - 1] = keep_or<T>(load_part(t + last, rest, whole, keep, zero) * inv_tau, keep, neg_inf);
  zv[NV - 1] = load_part(z + last, rest, whole, keep, neg_inf);
  Vec<T> vms = s[0], vmz = zv[0];
  for (int k = 1; k < NV; ++k) {
    vms = vmax<T>(vms, s[k]);
    vmz = vmax<T>(vmz, zv[k]);
  }
  RowSums<T> r{hmax(vms), hmax(vmz), 0, 0, 0};
  const Vec<T> vs(r.ms), vz(r.mz);
  Vec<T> es = zero, ez = zero, ea = zero;
  for (int k = 0; k < NV; ++k) {
    Vec<T> e = exp_nonpos<T>(s[k] - vs);
    Vec<T> d = zv[k] - vz;
    Vec<T> ed = exp_nonpos<T>(d);
    if (k == NV - 1) { // past the row: s = z = -inf, so e and exp(d) are (nearly) 0 and d = -inf
      e = keep_or<T>(e, keep, zero);
      d = keep_or<T>(d, keep, zero);
      ed = keep_or<T>(ed, keep, zero);
    }
    es = es + e;
    ea = at::vec::fmadd(e, d, ea);
    ez = ez + ed;
  }
  r.Ss = hsum(es);
  r.Sz = hsum(ez);
  r.A = hsum(ea);
  return r;
}

template <typename T, int NV>
void backward_row_short(const BackwardRows<T>& a, int64_t v, const Vec<T>& keep, int64_t limit) {
  constexpr int64_t W = Vec<T>::size();
  const int64_t C = a.cols, rest = C - (NV - 1) * W, last = (NV - 1) * W;
  const bool whole_read = v * C + NV * W <= a.rows * C;
  const bool whole_write = v * C + NV * W <= limit;
  const Vec<T> zero(T(0));
  const T* t = a.t + v * C;
  const T* z = a.z + v * C;
  const T inv_tau_v = T(1) / a.tau[v];
  const T coef_v = a.g[v * a.g_stride] * (a.w == nullptr ? T(1) : a.w[v]);
  const Vec<T> inv_tau(inv_tau_v), ls(a.lse_s[v]), lz(a.lse_z[v]), coef(coef_v);
  Vec<T> tv[NV], zv[NV], p[NV];
  for (int k = 0; k < NV - 1; ++k) {
    tv[k] = Vec<T>::loadu(t + k * W);
    zv[k] = Vec<T>::loadu(z + k * W);
  }
  tv[NV - 1] = load_part(t + last, rest, whole_read, keep, zero);
  zv[NV - 1] = load_part(z + last, rest, whole_read, keep, zero);
  Vec<T> apt = zero, apz = zero;
  for (int k = 0; k < NV; ++k) {
    p[k] = exp_nonpos<T>(tv[k] * inv_tau - ls);
    if (k == NV - 1) {
      p[k] = keep_or<T>(p[k], keep, zero);
    }
    const Vec<T> g = coef * (exp_nonpos<T>(zv[k] - lz) - p[k]);
    store_part(g, a.dz + v * C + k * W, k == NV - 1 ? rest : W, k < NV - 1 || whole_write);
    apt = at::vec::fmadd(p[k], tv[k], apt);
    apz = at::vec::fmadd(p[k], zv[k], apz);
  }
  const Vec<T> pt(hsum(apt)), pz(hsum(apz));
  Vec<T> cov = zero;
  for (int k = 0; k < NV; ++k) {
    cov = at::vec::fmadd(p[k] * (tv[k] - pt), zv[k] - pz, cov);
  }
  a.dtau[v] = coef_v * hsum(cov) * inv_tau_v * inv_tau_v;
  if (a.dt != nullptr) {
    const Vec<T> scale(-coef_v * inv_tau_v);
    for (int k = 0; k < NV; ++k) {
      store_part(scale * p[k] * (zv[k] - pz), a.dt + v * C + k * W, k == NV - 1 ? rest : W,
                 k < NV - 1 || whole_write);
    }
  }
}

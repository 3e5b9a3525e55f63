// oneDNN convolution primitives over rtune tensors. oneDNN picks its kernel (JIT for the ISA found at
// run time) for the layouts it is given: channels-last activations are read and written in place; NCHW
// ones are reordered into oneDNN's blocked layout and back around each call, because its plain-NCHW
// kernels are im2col + GEMM (measured no faster than Eigen, and 4-14x slower at backward-weights);
// weights are always reordered (they are small). Primitives are cached per shape/layout/arguments:
// creating one costs far more than running a small convolution.
#include "kernels/cpu/onednn/conv2d_onednn.h"
#include <array>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <unordered_map>
#include <memory>
#include <mutex>
#include <vector>
#include "kernels/cpu/backend.h"
#include "kernels/cpu/onednn/engine.h"

namespace rtune::cpu::onednn {

namespace {

using dnnl::memory;
using Dims = memory::dims;

bool dense(const Tensor& t) { return t.is_contiguous() || t.is_contiguous(MemoryFormat::channels_last); }

// t as oneDNN can read it: itself when dense in NCHW or channels-last, else an NCHW copy.
Tensor readable(const Tensor& t) { return dense(t) ? t : t.contiguous(); }

MemoryFormat format_of(const Tensor& t) {
  return t.is_contiguous() ? MemoryFormat::contiguous : MemoryFormat::channels_last;
}

// One convolution's activations in one layout: channels-last when any of them is channels-last and
// not also NCHW. A tensor that is both (1x1 spatial, as layer4's at small image sizes) is then described
// channels-last too: oneDNN has no JIT kernel for nhwc beside nchw, only its reference one (~100x slower).
MemoryFormat layout_of(std::initializer_list<const Tensor*> activations) {
  for (const Tensor* t : activations)
    if (!t->is_contiguous()) return MemoryFormat::channels_last;
  return MemoryFormat::contiguous;
}

// Canonical strides for the layout rather than t.strides(): a size-1 dimension may carry any stride,
// and oneDNN recognises nchw / nhwc (and picks its JIT kernels) only from the canonical ones.
memory::desc desc_of(const Tensor& t, MemoryFormat layout = MemoryFormat::contiguous) {
  const Shape& s = t.shape();
  Shape st = contiguous_strides(s, t.is_contiguous(layout) ? layout : format_of(t));
  return memory::desc(Dims(s.begin(), s.end()), memory::data_type::f32, Dims(st.begin(), st.end()));
}

// oneDNN's reference kernels (its fallback when no JIT kernel takes the layouts, e.g. bf16 training
// of a 3-channel nhwc input) run ~100x slower than a reorder into its blocked layout and a JIT kernel.
template <class PD> bool is_reference(const PD& pd) { return std::string(pd.impl_info_str()).rfind("ref", 0) == 0; }

// forward_inference and forward_training are separate primitives (oneDNN may pick other kernels for
// each), so the kind, which the cache key starts with, tells them apart.
enum class Kind : int64_t { forward_training, forward_inference, backward_data, backward_weights, forward_fused };

// The cache key: what the primitive was built for (shapes, layouts, arguments, bias or not).
std::vector<int64_t> key_of(Kind k, const Conv2dArgs& a, bool bias, std::initializer_list<const Tensor*> ts) {
  std::vector<int64_t> key{int64_t(k), a.stride_h, a.stride_w, a.pad_h, a.pad_w, a.dilation_h, a.dilation_w, bias,
                           a.bf16_products};
  for (const Tensor* t : ts) {
    key.insert(key.end(), t->shape().begin(), t->shape().end());
    key.push_back(int64_t(format_of(*t)));
  }
  return key;
}

// A primitive and, per tensor argument, the user's layout and, where the primitive wants another, the
// reorder into it (inputs) or out of it (outputs). Built once per key.
struct Entry {
  struct Arg {
    int id;
    memory::desc user, inner;
    bool output;
    dnnl::reorder move;  // empty when inner == user; user -> inner for an input, inner -> user for an output
  };
  dnnl::primitive prim;
  std::vector<Arg> args;
  memory::desc scratchpad;  // the primitive's working memory, which rtune lends it from the arena
  // oneDNN 2.6's bf16 backward-weights kernel reads scratchpad bytes it never wrote (seen with 1x1
  // inputs to a padded 3x3 convolution: ResNet's layer4 at small image sizes): with stale bytes there,
  // the weight gradient depends on what ran before, and a resumed run differs from an uninterrupted one.
  // Such primitives get a zeroed scratchpad on every call.
  bool zero_scratchpad = false;
  // forward_fused only: false when oneDNN would run the post-ops in another implementation than the plain
  // convolution's (a reference kernel, say): the caller then runs the plain one and the epilogue apart.
  bool fused = true;
};

// Every primitive takes its scratchpad from rtune (not allocated by oneDNN per call).
dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

// The reordered copies live in one growable buffer per argument position, shared by every primitive:
// calls run one at a time (each already uses every OpenMP thread), so memory is the largest tensor per
// position, not the sum over a network's layers, and a step allocates nothing once the first has run.
struct Arena {
  std::mutex m;  // held for a whole call: the buffers and the stream are in use until it returns
  struct Block {
    std::unique_ptr<void, decltype(&std::free)> p{nullptr, &std::free};
    size_t bytes = 0;
  };
  std::array<Block, 5> blocks;  // one per argument position (at most 4), then the scratchpad
  void* get(size_t i, size_t bytes) {
    Block& b = blocks[i];
    if (b.bytes < bytes) {
      size_t rounded = (bytes + 63) / 64 * 64;
      b.p.reset(std::aligned_alloc(64, rounded));
      if (!b.p) throw std::bad_alloc();
      b.bytes = rounded;
    }
    return b.p.get();
  }
};
Arena& arena() {
  static Arena a;
  return a;
}

// The layout oneDNN computes a tensor in: with `in_place`, channels-last activations as they are (its JIT
// kernels read nhwc directly); else, and for NCHW ones, whatever oneDNN prefers (a blocked nChw16c-like
// layout: its plain-NCHW kernels are im2col + GEMM, no faster than Eigen); weights always in its
// preferred layout. `type` is bf16 for a bf16-products convolution's inputs (the reorder into it rounds
// them), else f32.
memory::desc wanted(const memory::desc& user, bool in_place, memory::data_type type = memory::data_type::f32) {
  if (in_place)
    return type == memory::data_type::f32 ? user : memory::desc(user.dims(), type, memory::format_tag::nhwc);
  return memory::desc(user.dims(), type, memory::format_tag::any);
}
// Whether a convolution computes an activation where it is: the convolution is channels-last and so is the
// tensor (more than one channel). A strictly-NCHW tensor beside channels-last ones is reordered instead:
// described in place, it could send oneDNN to a GEMM kernel.
bool nhwc_in_place(MemoryFormat layout, const Tensor& x) {
  return layout == MemoryFormat::channels_last && x.size(1) > 1 && x.is_contiguous(MemoryFormat::channels_last);
}

// The type of a convolution's inputs inside oneDNN (its outputs are always f32, as the tensors).
memory::data_type input_type(const Conv2dArgs& a) {
  return a.bf16_products ? memory::data_type::bf16 : memory::data_type::f32;
}

template <class PD>
std::shared_ptr<Entry> make_entry(const PD& pd, std::initializer_list<std::tuple<int, memory::desc, bool>> args) {
  auto e = std::make_shared<Entry>();
  e->prim = dnnl::primitive(pd);
  e->scratchpad = pd.scratchpad_desc();
  for (auto& [id, user, output] : args) {
    Entry::Arg a{id, user, pd.query_md(dnnl::query::exec_arg_md, id), output, {}};
    if (a.inner != user)
      a.move = output ? dnnl::reorder(dnnl::reorder::primitive_desc(cpu_engine(), a.inner, cpu_engine(), user))
                      : dnnl::reorder(dnnl::reorder::primitive_desc(cpu_engine(), user, cpu_engine(), a.inner));
    e->args.push_back(std::move(a));
  }
  return e;
}

template <class Make> std::shared_ptr<Entry> cached(const std::vector<int64_t>& key, Make&& make) {
  static std::mutex m;
  static std::map<std::vector<int64_t>, std::shared_ptr<Entry>> cache;
  constexpr size_t kMaxEntries = 512;  // far above one network's shapes; a bound for long-lived processes
  std::lock_guard<std::mutex> lock(m);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  if (cache.size() >= kMaxEntries) cache.clear();
  return cache.emplace(key, make()).first->second;
}

// Runs the entry on the tensors' storage, given in the order of make_entry's args.
void run(Entry& e, std::initializer_list<const Tensor*> tensors) {
  Arena& ar = arena();
  std::lock_guard<std::mutex> lock(ar.m);
  dnnl::stream& s = cpu_stream();
  std::unordered_map<int, memory> exec;
  std::vector<std::tuple<dnnl::reorder*, memory, memory>> outs;  // reordered back after the primitive
  auto t = tensors.begin();
  for (size_t i = 0; i < e.args.size(); ++i) {
    Entry::Arg& a = e.args[i];
    memory user(a.user, cpu_engine(), (*t++)->raw_data());
    if (!a.move) {
      exec.emplace(a.id, user);
      continue;
    }
    memory inner(a.inner, cpu_engine(), ar.get(i, a.inner.get_size()));
    exec.emplace(a.id, inner);
    if (a.output) outs.emplace_back(&a.move, inner, user);
    else a.move.execute(s, user, inner);
  }
  if (const size_t bytes = e.scratchpad.get_size()) {
    void* p = ar.get(ar.blocks.size() - 1, bytes);
    if (e.zero_scratchpad) std::memset(p, 0, bytes);
    exec.emplace(DNNL_ARG_SCRATCHPAD, memory(e.scratchpad, cpu_engine(), p));
  }
  e.prim.execute(s, exec);
  for (auto& [move, inner, user] : outs) move->execute(s, inner, user);
  s.wait();
  note_onednn_execution();
}

// torch's dilation d is oneDNN's d - 1; the right padding equals the left one, as torch pads both
// sides alike (oneDNN's output-size check floors like torch's, so the shapes agree).
struct Geometry {
  Dims strides, dilates, pad_l, pad_r;
};
Geometry geometry(const Conv2dArgs& a) {
  return {{a.stride_h, a.stride_w}, {a.dilation_h - 1, a.dilation_w - 1}, {a.pad_h, a.pad_w}, {a.pad_h, a.pad_w}};
}

// The backward primitives' hints are forward_training ones (oneDNN requires it).
dnnl::convolution_forward::primitive_desc forward_pd(const memory::desc& x, const memory::desc& w,
                                                     const memory::desc* bias, const memory::desc& y,
                                                     const Conv2dArgs& a,
                                                     dnnl::prop_kind prop = dnnl::prop_kind::forward_training,
                                                     const dnnl::primitive_attr& attr = user_scratchpad()) {
  Geometry g = geometry(a);
  auto d = bias ? dnnl::convolution_forward::desc(prop, dnnl::algorithm::convolution_direct, x, w, *bias, y,
                                                  g.strides, g.dilates, g.pad_l, g.pad_r)
                : dnnl::convolution_forward::desc(prop, dnnl::algorithm::convolution_direct, x, w, y, g.strides,
                                                  g.dilates, g.pad_l, g.pad_r);
  return dnnl::convolution_forward::primitive_desc(d, attr, cpu_engine());
}

// Runs fn(out) on `out` itself when oneDNN can write it in place, else on a dense NCHW temporary that
// is copied into it afterwards.
template <class F> void with_dense_output(Tensor& out, F&& fn) {
  if (dense(out)) return fn(out);
  Tensor tmp = empty(out.shape(), {out.dtype(), out.device()});
  fn(tmp);
  out.copy_(tmp);
}

}  // namespace

void conv2d_forward(const Tensor& x0, const Tensor& w0, const Tensor& bias0, const Conv2dArgs& a, Tensor& y0) {
  Tensor x = readable(x0), w = readable(w0), bias = bias0.defined() ? bias0.contiguous() : Tensor();
  with_dense_output(y0, [&](Tensor& y) {
    const Kind kind = a.inference ? Kind::forward_inference : Kind::forward_training;
    auto e = cached(key_of(kind, a, bias.defined(), {&x, &w, &y}), [&] {
      const MemoryFormat layout = layout_of({&x, &y});
      memory::desc xd = desc_of(x, layout), wd = desc_of(w), yd = desc_of(y, layout);
      memory::desc bd({w.size(0)}, memory::data_type::f32, memory::format_tag::a);
      auto make = [&](bool in_place) {
        return forward_pd(wanted(xd, in_place && nhwc_in_place(layout, x), input_type(a)), wanted(wd, false, input_type(a)),
                          bias.defined() ? &bd : nullptr, wanted(yd, in_place && nhwc_in_place(layout, y)), a,
                          a.inference ? dnnl::prop_kind::forward_inference : dnnl::prop_kind::forward_training);
      };
      auto pd = make(true);
      if (is_reference(pd)) pd = make(false);
      if (!bias.defined()) return make_entry(pd, {{DNNL_ARG_SRC, xd, false}, {DNNL_ARG_WEIGHTS, wd, false}, {DNNL_ARG_DST, yd, true}});
      return make_entry(pd, {{DNNL_ARG_SRC, xd, false}, {DNNL_ARG_WEIGHTS, wd, false}, {DNNL_ARG_BIAS, bd, false},
                             {DNNL_ARG_DST, yd, true}});
    });
    if (bias.defined()) run(*e, {&x, &w, &bias, &y});
    else run(*e, {&x, &w, &y});
    if (a.inference) note_onednn_inference_execution();
  });
}

bool conv2d_forward_fused(const Tensor& x0, const Tensor& w0, const Tensor& bias0, const Tensor& residual, bool relu,
                          const Conv2dArgs& a, Tensor& y) {
  // Only where the output needs no reorder (channels-last, as inference runs). The residual is copied
  // into the output and the convolution adds its result onto it (a sum post-op), then clamps: oneDNN 2.6
  // runs a binary-add post-op (which would read the residual in place) only in an older, slower kernel
  // (ResNet-18 inference 543 -> 568-603 ms), a sum post-op in the same one as the plain convolution.
  auto channels_last = [](const Tensor& t) { return format_of(t) == MemoryFormat::channels_last && dense(t) && t.size(1) > 1; };
  if (!channels_last(y) || (residual.defined() && !channels_last(residual))) return false;
  Tensor x = readable(x0), w = readable(w0), bias = bias0.defined() ? bias0.contiguous() : Tensor();
  std::vector<int64_t> key = key_of(Kind::forward_fused, a, bias.defined(), {&x, &w, &y});
  key.insert(key.end(), {residual.defined(), relu});
  auto e = cached(key, [&] {
    const MemoryFormat layout = MemoryFormat::channels_last;
    memory::desc xd = desc_of(x, layout), wd = desc_of(w), yd = desc_of(y, layout);
    memory::desc bd({w.size(0)}, memory::data_type::f32, memory::format_tag::a);
    dnnl::post_ops ops;
    if (residual.defined()) ops.append_sum(1.0f);
    if (relu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    dnnl::primitive_attr attr = user_scratchpad();
    attr.set_post_ops(ops);
    const memory::desc xi = wanted(xd, nhwc_in_place(layout, x), input_type(a)), wi = wanted(wd, false, input_type(a)),
                       yi = wanted(yd, true);
    const memory::desc* b = bias.defined() ? &bd : nullptr;
    auto pd = forward_pd(xi, wi, b, yi, a, dnnl::prop_kind::forward_inference, attr);
    auto plain = forward_pd(xi, wi, b, yi, a, dnnl::prop_kind::forward_inference);
    std::shared_ptr<Entry> made =
        bias.defined() ? make_entry(pd, {{DNNL_ARG_SRC, xd, false}, {DNNL_ARG_WEIGHTS, wd, false}, {DNNL_ARG_BIAS, bd, false},
                                         {DNNL_ARG_DST, yd, true}})
                       : make_entry(pd, {{DNNL_ARG_SRC, xd, false}, {DNNL_ARG_WEIGHTS, wd, false}, {DNNL_ARG_DST, yd, true}});
    made->fused = std::string(pd.impl_info_str()) == plain.impl_info_str() && !is_reference(pd);
    return made;
  });
  if (!e->fused) return false;
  if (residual.defined()) y.copy_(residual);
  if (bias.defined()) run(*e, {&x, &w, &bias, &y});
  else run(*e, {&x, &w, &y});
  note_onednn_inference_execution();
  note_onednn_fused_execution();
  return true;
}

void conv2d_backward_input(const Tensor& gy0, const Tensor& w0, const Conv2dArgs& a, Tensor& gx0) {
  Tensor gy = readable(gy0), w = readable(w0);
  with_dense_output(gx0, [&](Tensor& gx) {
    auto e = cached(key_of(Kind::backward_data, a, false, {&gy, &w, &gx}), [&] {
      const MemoryFormat layout = layout_of({&gy, &gx});
      memory::desc gyd = desc_of(gy, layout), wd = desc_of(w), gxd = desc_of(gx, layout);
      Geometry g = geometry(a);
      auto make = [&](bool in_place) {
        memory::desc gyi = wanted(gyd, in_place && nhwc_in_place(layout, gy), input_type(a)),
                     wi = wanted(wd, false, input_type(a)), gxi = wanted(gxd, in_place && nhwc_in_place(layout, gx));
        dnnl::convolution_backward_data::desc d(dnnl::algorithm::convolution_direct, gxi, wi, gyi, g.strides, g.dilates,
                                                g.pad_l, g.pad_r);
        // The hint is the forward this backward belongs to: its source in the inputs' type.
        auto hint = forward_pd(wanted(gxd, in_place && nhwc_in_place(layout, gx), input_type(a)), wi, nullptr, gyi, a);
        return dnnl::convolution_backward_data::primitive_desc(d, user_scratchpad(), cpu_engine(), hint);
      };
      auto pd = make(true);
      if (is_reference(pd)) pd = make(false);
      return make_entry(pd, {{DNNL_ARG_DIFF_DST, gyd, false}, {DNNL_ARG_WEIGHTS, wd, false}, {DNNL_ARG_DIFF_SRC, gxd, true}});
    });
    run(*e, {&gy, &w, &gx});
  });
}

void conv2d_backward_weight(const Tensor& gy0, const Tensor& x0, const Conv2dArgs& a, Tensor& gw0) {
  Tensor gy = readable(gy0), x = readable(x0);
  with_dense_output(gw0, [&](Tensor& gw) {
    auto e = cached(key_of(Kind::backward_weights, a, false, {&gy, &x, &gw}), [&] {
      const MemoryFormat layout = layout_of({&gy, &x});
      memory::desc gyd = desc_of(gy, layout), xd = desc_of(x, layout), gwd = desc_of(gw);
      Geometry g = geometry(a);
      auto make = [&](bool in_place) {
        memory::desc gyi = wanted(gyd, in_place && nhwc_in_place(layout, gy), input_type(a)),
                     xi = wanted(xd, in_place && nhwc_in_place(layout, x), input_type(a)), gwi = wanted(gwd, false);
        dnnl::convolution_backward_weights::desc d(dnnl::algorithm::convolution_direct, xi, gwi, gyi, g.strides,
                                                   g.dilates, g.pad_l, g.pad_r);
        auto hint = forward_pd(xi, wanted(gwd, false, input_type(a)), nullptr, gyi, a);
        return dnnl::convolution_backward_weights::primitive_desc(d, user_scratchpad(), cpu_engine(), hint);
      };
      auto pd = make(true);
      if (is_reference(pd)) pd = make(false);
      auto e = make_entry(pd, {{DNNL_ARG_DIFF_DST, gyd, false}, {DNNL_ARG_SRC, xd, false}, {DNNL_ARG_DIFF_WEIGHTS, gwd, true}});
      e->zero_scratchpad = a.bf16_products;
      return e;
    });
    run(*e, {&gy, &x, &gw});
  });
}

}  // namespace rtune::cpu::onednn

#include "worker/nn/dnnl_util.h"

#include "base/check.h"

namespace muppet::dnnl_util {

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

dnnl::engine& Engine() {
  static dnnl::engine* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

dnnl::stream& Stream() {
  static dnnl::stream* stream = new dnnl::stream(Engine());
  return *stream;
}

dnnl::memory::desc Desc(const Shape& shape) {
  const dnnl::memory::dims dims(shape.begin(), shape.end());
  switch (shape.size()) {
    case 1:
      return dnnl::memory::desc(dims, dt::f32, tag::a);
    case 2:
      return dnnl::memory::desc(dims, dt::f32, tag::ab);
    case 4:
      return dnnl::memory::desc(dims, dt::f32, tag::nhwc);
  }
  MUPPET_CHECK(false) << "no oneDNN layout for rank " << shape.size();
  return {};
}

dnnl::memory Wrap(const dnnl::memory::desc& desc, const Tensor& tensor) {
  return dnnl::memory(desc, Engine(), const_cast<float*>(tensor.data()));
}

dnnl::memory MemoryLike(const dnnl::memory& user, const dnnl::memory::desc& desc) {
  if (user.get_desc() == desc) return user;
  return dnnl::memory(desc, Engine());
}

void CopyMemory(const dnnl::memory& from, const dnnl::memory& to) {
  if (from.get_data_handle() == to.get_data_handle()) return;
  // Reorder primitives are cached by oneDNN's primitive cache, so re-creating one is cheap.
  dnnl::reorder(from, to).execute(Stream(), const_cast<dnnl::memory&>(from),
                                  const_cast<dnnl::memory&>(to));
}

}  // namespace muppet::dnnl_util

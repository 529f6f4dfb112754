// One call of a compiled kernel through a binding prepared at its signature's first call (hostkernel.PreparedCall):
// the one pass over the arrays that checks what can differ between calls with one signature, then the kernel.
//
// minidl_call(binding, args, size) reads the arrays of `args` (the call's Python tuple) where CPython and NumPy lay
// them out (offsets measured and checked against NumPy's own answers when the library loads: minidl_layout), and
// checks each against the binding: the same dtype object, C-contiguous, writable if an output, the non-raw ones
// of one shape (0-d or not, as at the binding's first call), each raw one of the binding's ndim; an array whose
// shape the caller has checked (a Reduction's inputs and outputs: its prepared calls are keyed by their shapes)
// only the first three. It returns 0
// once the kernel has run, or the index + 1 of the first argument that differs; nothing has run then, and the
// caller takes the full checks, which name what is wrong. Empty loops and loops of more than LARGE elements go
// the full way too (their signatures differ: none, or 64-bit indices).
#include <cstddef>

namespace {

typedef void (*Kernel)(ptrdiff_t, void* const*, const ptrdiff_t*);

const int C_CONTIGUOUS = 0x1, WRITEABLE = 0x400;  // NumPy's NPY_ARRAY_C_CONTIGUOUS, NPY_ARRAY_WRITEABLE
const ptrdiff_t LARGE = ptrdiff_t(1) << 28;

struct Layout {
  ptrdiff_t tupleItems;                         // offset of a tuple's first item
  ptrdiff_t data, ndim, shape, descr, flags;   // offsets in an ndarray
} layout;

template <typename T> T field(const void* object, ptrdiff_t offset) {
  return *reinterpret_cast<const T*>(static_cast<const char*>(object) + offset);
}

}  // namespace

struct Binding {  // hostkernel.PreparedCall builds it
  Kernel kernel;
  int count;               // parameters
  const int* kinds;        // per parameter: -3 an array of a shape checked by the caller, -2 scalar, -1 non-raw
                           // array, else a raw array of that ndim
  const int* outputs;      // per parameter: 1 for an output
  void* const* descrs;     // per parameter: the dtype object its array must have
  int zeroD;               // the non-raw arrays are 0-d
  void** slots;            // what the kernel gets per parameter: a scalar's slot (set by the caller), an array's data
  ptrdiff_t* rawShapes;    // the raw arrays' shapes, one after the other
};

extern "C" void minidl_layout(ptrdiff_t tupleItems, ptrdiff_t data, ptrdiff_t ndim, ptrdiff_t shape,
                              ptrdiff_t descr, ptrdiff_t flags) {
  layout = {tupleItems, data, ndim, shape, descr, flags};
}

extern "C" int minidl_call(const Binding* binding, const void* args, ptrdiff_t size) {
  const ptrdiff_t* loopShape = nullptr;  // the first non-raw array's (NumPy's 0-d arrays have none)
  int loopDims = -1;                      // -1 until a non-raw array is seen
  ptrdiff_t* rawShape = binding->rawShapes;
  for (int index = 0; index < binding->count; ++index) {
    const int kind = binding->kinds[index];
    if (kind == -2) continue;
    const void* array = field<const void*>(args, layout.tupleItems + index * ptrdiff_t(sizeof(void*)));
    const int flags = field<int>(array, layout.flags);
    const int dims = field<int>(array, layout.ndim);
    const ptrdiff_t* shape = field<const ptrdiff_t*>(array, layout.shape);
    if (field<const void*>(array, layout.descr) != binding->descrs[index] || !(flags & C_CONTIGUOUS) ||
        (binding->outputs[index] && !(flags & WRITEABLE)))
      return index + 1;
    if (kind == -1) {
      if (loopDims < 0) {
        if ((dims == 0) != (binding->zeroD != 0)) return index + 1;
        loopShape = shape;
        loopDims = dims;
      } else {
        if (dims != loopDims) return index + 1;
        for (int dim = 0; dim < dims; ++dim)
          if (shape[dim] != loopShape[dim]) return index + 1;
      }
    } else if (kind >= 0) {
      if (dims != kind) return index + 1;
      ptrdiff_t elements = 1;
      for (int dim = 0; dim < dims; ++dim) elements *= (*rawShape++ = shape[dim]);
      if (elements > LARGE) return index + 1;
    }
    binding->slots[index] = field<void*>(array, layout.data);
  }
  if (loopDims >= 0) {
    size = 1;
    for (int dim = 0; dim < loopDims; ++dim) size *= loopShape[dim];
  }
  if (size <= 0 || size > LARGE) return binding->count + 1;
  binding->kernel(size, binding->slots, binding->rawShapes);
  return 0;
}

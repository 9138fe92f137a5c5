"""A small graph-building helper over :mod:`onnx.helper`.

:class:`GraphBuilder` hands out unique value names, turns numpy weights into initializers in
the graph's compute precision and offers the layers the COP-GEN-Beta graphs share. Graph
inputs and outputs are always float32; an fp16 graph casts right after its inputs and right
before its outputs, so callers never see half floats.

Given an external data file, the builder streams every sizeable initializer into it as the
graph grows and keeps only a reference, so a graph of any size costs little memory and never
meets protobuf's 2 GB limit.
"""

from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from .. import __version__
from .cancel import check_cancel

OPSET = 17  # first opset with LayerNormalization
MS_DOMAIN = "com.microsoft"  # onnxruntime's contrib operators (fused kernels on CPU and CUDA)
IR_VERSION = 8  # the IR of opset 17; readable by every onnxruntime since 1.14
PRECISIONS = {"fp32": np.float32, "fp16": np.float16}
EXTERNAL_MIN_BYTES = 1024  # smaller tensors stay inside the graph
EXTERNAL_ALIGNMENT = 4096  # page-aligned offsets let onnxruntime map the weights


class GraphBuilder:
    """Accumulates nodes, initializers, inputs and outputs of one ONNX graph."""

    def __init__(self, name, precision="fp32", external_data=None, cancel=None):
        """`external_data`: path of a new file to hold the weights (None: inside the graph);
        `cancel`: polled at every weight, so a conversion stops within a fraction of a second."""
        self.name = name
        self._cancel = cancel
        self.dtype = np.dtype(PRECISIONS[precision])
        self.elem_type = helper.np_dtype_to_tensor_dtype(self.dtype)
        self._nodes = []
        self._initializers = []
        self._inputs = []
        self._outputs = []
        self._names = set()
        self._domains = {"": OPSET}
        self._external = None if external_data is None else open(Path(external_data), "xb")

    # --- names, inputs, outputs, initializers ---------------------------------------------

    def _fresh(self, hint):
        name = hint
        index = 1
        while name in self._names:
            name = f"{hint}_{index}"
            index += 1
        self._names.add(name)
        return name

    def input(self, name, shape):
        """Declares a float32 graph input (str entries of `shape` are dynamic) and returns it."""
        self._names.add(name)
        self._inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
        return name

    def output(self, value, name, shape):
        """Declares `value`, cast to float32, as the graph output `name`."""
        self._names.add(name)
        self._nodes.append(
            helper.make_node("Cast", [value], [name], to=TensorProto.FLOAT, name=name)
            if self.dtype != np.float32
            else helper.make_node("Identity", [value], [name], name=name)
        )
        self._outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))

    def to_compute(self, value):
        """A float32 value in the graph's compute precision."""
        if self.dtype == np.float32:
            return value
        return self.op("Cast", value, to=self.elem_type)

    def to_float32(self, value):
        if self.dtype == np.float32:
            return value
        return self.op("Cast", value, to=TensorProto.FLOAT)

    def weight(self, name, array):
        """An initializer holding `array` in the compute precision."""
        check_cancel(self._cancel, f"building {self.name}")
        return self.constant(np.asarray(array).astype(self.dtype, copy=False), name)

    def constant(self, array, hint="const"):
        """An initializer keeping `array`'s own dtype (shapes, float32 tables)."""
        name = self._fresh(hint)
        array = np.asarray(array)
        if self._external is not None and array.nbytes >= EXTERNAL_MIN_BYTES:
            self._initializers.append(self._write_external(name, array))
        else:
            self._initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def _write_external(self, name, array):
        stream = self._external
        position = stream.tell()
        offset = position + (-position % EXTERNAL_ALIGNMENT)
        stream.write(b"\0" * (offset - position))
        stream.write(np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).data)
        tensor = TensorProto(
            name=name,
            data_type=helper.np_dtype_to_tensor_dtype(array.dtype),
            dims=array.shape,
            data_location=TensorProto.EXTERNAL,
        )
        location = {"location": Path(stream.name).name, "offset": offset, "length": array.nbytes}
        for key, value in location.items():
            tensor.external_data.add(key=key, value=str(value))
        return tensor

    def shape_const(self, *dims):
        return self.constant(np.array(dims, dtype=np.int64), "shape")

    def scalar(self, value, hint="scalar"):
        return self.constant(np.array(value, dtype=self.dtype), hint)

    def op(self, op_type, *inputs, outputs=1, domain="", **attrs):
        """Adds one node and returns its output name (a list of names if outputs > 1)."""
        names = [self._fresh(op_type.lower()) for _ in range(outputs)]
        if domain:
            self._domains[domain] = 1
        self._nodes.append(
            helper.make_node(op_type, list(inputs), names, name=names[0], domain=domain, **attrs)
        )
        return names[0] if outputs == 1 else names

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self._external is not None:
            self._external.close()

    def model(self):
        """The finished ModelProto; with external data, call it after the `with` block."""
        graph = helper.make_graph(
            self._nodes, self.name, self._inputs, self._outputs, initializer=self._initializers
        )
        return helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid(d, v) for d, v in self._domains.items()],
            ir_version=IR_VERSION,
            producer_name="copgen_beta",
            producer_version=__version__,
        )

    # --- layers -------------------------------------------------------------------------------

    def linear(self, x, weight, bias, name):
        """PyTorch nn.Linear: weight [out, in] is stored transposed for MatMul."""
        y = self.op("MatMul", x, self.weight(f"{name}.weight", np.asarray(weight).T))
        if bias is not None:
            y = self.op("Add", y, self.weight(f"{name}.bias", bias))
        return y

    def layer_norm(self, x, scale, bias, name, eps=1e-5):
        # stash_type 1: mean and variance in float32 whatever the compute precision
        return self.op(
            "LayerNormalization",
            x,
            self.weight(f"{name}.weight", scale),
            self.weight(f"{name}.bias", bias),
            axis=-1,
            epsilon=eps,
            stash_type=1,
        )

    def gelu(self, x):
        """Exact GELU, 0.5 x (1 + erf(x / sqrt 2)).

        Written with Div, the pattern onnxruntime recognises and fuses into one Gelu kernel.
        """
        erf = self.op("Erf", self.op("Div", x, self.scalar(np.sqrt(2.0), "sqrt2")))
        one_plus = self.op("Add", erf, self.scalar(1.0, "one"))
        return self.op("Mul", self.op("Mul", x, self.scalar(0.5, "half")), one_plus)

    def silu(self, x):
        return self.op("Mul", x, self.op("Sigmoid", x))

    def conv(self, x, weight, bias, name, stride=1, pads=None, group=1):
        """2-D convolution; `pads` is ONNX's [top, left, bottom, right] (default: same size)."""
        kernel = np.asarray(weight).shape[-1]
        if pads is None:
            pads = [kernel // 2] * 4
        return self.op(
            "Conv",
            x,
            self.weight(f"{name}.weight", weight),
            self.weight(f"{name}.bias", bias),
            kernel_shape=[kernel, kernel],
            strides=[stride, stride],
            pads=list(pads),
            group=group,
        )

    def group_norm(self, x, scale, bias, name, groups, eps):
        """GroupNorm over [B, C, H, W] with statistics in float32.

        Opset 17 has no GroupNormalization, so the groups are normalised as the channels of
        an InstanceNormalization over [B, groups, C/groups * H * W]; the per-channel affine
        follows in the compute precision.
        """
        channels = np.asarray(scale).shape[0]
        grouped = self.op("Reshape", self.to_float32(x), self.shape_const(0, groups, -1))
        normed = self.op(
            "InstanceNormalization",
            grouped,
            self.constant(np.ones(groups, np.float32), "ones"),
            self.constant(np.zeros(groups, np.float32), "zeros"),
            epsilon=eps,
        )
        normed = self.to_compute(self.op("Reshape", normed, self.op("Shape", x)))
        scaled = self.op(
            "Mul", normed, self.weight(f"{name}.weight", np.reshape(scale, (channels, 1, 1)))
        )
        shift = self.weight(f"{name}.bias", np.reshape(bias, (channels, 1, 1)))
        return self.op("Add", scaled, shift)

    def multi_head_attention(self, q, k, v, heads, scale):
        """softmax(scale q k^T) v per head of [B, L, heads * Dh] inputs -> [B, L, heads * Dh].

        onnxruntime's fused kernel (CPU and CUDA): no head transposes, and in float32 on the
        CPU a tiled (flash) attention that never holds the [B, heads, L, L] scores.
        """
        return self.op(
            "MultiHeadAttention", q, k, v, domain=MS_DOMAIN, num_heads=heads, scale=float(scale)
        )

    def attention_core(self, q, k_t, v):
        """softmax(q @ k_t) @ v with the scale already folded into q.

        Scores and softmax run in float32, as the reference does, so an fp16 graph cannot
        overflow in q k^T.
        """
        scores = self.op("MatMul", self.to_float32(q), self.to_float32(k_t))
        probs = self.op("Softmax", scores, axis=-1)
        return self.to_compute(self.op("MatMul", probs, self.to_float32(v)))


def set_metadata(model, metadata):
    """Stores `metadata` (str -> str) as the model's metadata_props."""
    helper.set_model_props(model, {key: str(value) for key, value in metadata.items()})

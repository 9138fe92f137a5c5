"""Check a checkpoint's pickle before anything of it is built: linear time, no code run.

Python's unpickler builds dicts, tuples and sets in C: a pickle of under 1 KB can make it hash a
deeply shared tuple (exponential time, deaf to Ctrl-C) or build containers nested a million
deep. :func:`scan_state_dict_pickle` walks the opcodes once (``pickletools.genops``, pure
Python, so Ctrl-C and ``cancel`` work) with a stack of *kinds* instead of objects, and refuses
anything a PyTorch state dict does not need: dict keys other than strings and 64-bit integers
(an optimizer's state is keyed by parameter index; tuples are what hash exponentially), sets, globals
other than the allowed ones, calls with unexpected arguments, persistent ids other than
``("storage", <storage type>, "<key>", "<location>", <numel>)``, containers changed after
they were nested in another, nesting deeper than a state dict's, and oversized integers.
Messages name opcodes and positions, never the pickled data.
"""

import pickletools

from .cancel import check_cancel
from .errors import CheckpointError

MAX_DEPTH = 16  # a torch state dict with its _metadata needs 4
MAX_INT_BYTES = 8  # sizes, strides and offsets fit in int64
MAX_DIMS = 8
_CANCEL_EVERY = 1024  # opcodes between cancel checks

# Globals a torch state dict may ask for, and the kind of value calling them makes.
STORAGE_TYPES = (
    "FloatStorage", "HalfStorage", "BFloat16Storage", "DoubleStorage", "LongStorage", "IntStorage",
    "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage",
)
_ODICT = ("collections", "OrderedDict")
_REBUILD_TENSOR = ("torch._utils", "_rebuild_tensor_v2")
_REBUILD_PARAMETER = ("torch._utils", "_rebuild_parameter")
_ALLOWED_GLOBALS = {_ODICT, _REBUILD_TENSOR, _REBUILD_PARAMETER} | {("torch", name) for name in STORAGE_TYPES}


class _Value:
    """The kind of a value on the abstract stack: 'str', 'int', 'tuple', 'dict', 'global', ..."""

    __slots__ = ("kind", "depth", "items", "text", "sealed")

    def __init__(self, kind, depth=0, items=None, text=None):
        self.kind = kind
        self.depth = depth
        self.items = items  # tuples: their item kinds
        self.text = text  # short strings and globals: their value (module, name)
        self.sealed = False  # nested in another container: no more changes


_MARK = _Value("mark")
_SCALARS = {
    "NONE": "none", "NEWTRUE": "bool", "NEWFALSE": "bool", "BINFLOAT": "float", "FLOAT": "float",
    "BININT": "int", "BININT1": "int", "BININT2": "int",
    "BINBYTES": "bytes", "SHORT_BINBYTES": "bytes", "BINBYTES8": "bytes",
}
_STRINGS = ("BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "UNICODE")
_PUTS = ("BINPUT", "LONG_BINPUT", "PUT")
_GETS = ("BINGET", "LONG_BINGET", "GET")
_IGNORED = ("PROTO", "FRAME")


def scan_state_dict_pickle(data, where, cancel=None):
    """Raise CheckpointError (``where``: the file, for messages) unless the pickle ``data``
    only builds what a torch state dict needs; see the module docstring."""
    scan = _Scan(where)
    try:
        for count, (opcode, arg, pos) in enumerate(pickletools.genops(data)):
            if count % _CANCEL_EVERY == 0:
                check_cancel(cancel, f"reading {where}")
            scan.step(opcode.name, arg, pos)
    except CheckpointError:
        raise
    except (ValueError, IndexError) as exc:  # genops: truncated or unknown opcode
        raise CheckpointError(f"{where}: corrupt checkpoint pickle ({str(exc)[:120]})") from None
    if not scan.stopped:
        raise CheckpointError(f"{where}: corrupt checkpoint pickle (no STOP)")


class _Scan:
    def __init__(self, where):
        self.where = where
        self.stack = []
        self.memo = {}
        self.stopped = False

    def refuse(self, pos, why):
        raise CheckpointError(f"{self.where}: refused to load, the checkpoint pickle {why} (at byte {pos})")

    def pop(self, pos):
        if not self.stack or self.stack[-1] is _MARK:
            self.refuse(pos, "is malformed (stack underflow)")
        return self.stack.pop()

    def pop_mark(self, pos):
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index] is _MARK:
                items = self.stack[index + 1 :]
                del self.stack[index:]
                return items
        self.refuse(pos, "is malformed (no MARK)")

    def push_container(self, kind, items, pos):
        depth = 1 + max((item.depth for item in items), default=0)
        if depth > MAX_DEPTH:
            self.refuse(pos, f"nests containers more than {MAX_DEPTH} deep")
        for item in items:
            item.sealed = True
        self.stack.append(_Value(kind, depth, items=list(items)))

    def add_to(self, target, items, pos, keyed):
        if target.kind not in (("dict", "odict") if keyed else ("list",)):
            self.refuse(pos, f"adds items to a {target.kind}")
        if target.sealed:
            self.refuse(pos, "changes a container after nesting it in another")
        if keyed:
            if len(items) % 2:
                self.refuse(pos, "is malformed (odd SETITEMS)")
            if any(key.kind not in ("str", "int") for key in items[0::2]):
                self.refuse(pos, "uses a dict key that is not a string (nor a small integer)")
            items = items[1::2]
        depth = 1 + max((item.depth for item in items), default=0)
        if depth > MAX_DEPTH:
            self.refuse(pos, f"nests containers more than {MAX_DEPTH} deep")
        target.depth = max(target.depth, depth)
        for item in items:
            item.sealed = True

    def step(self, name, arg, pos):
        if self.stopped:
            self.refuse(pos, "goes on after STOP")
        stack = self.stack
        if name in _IGNORED:
            return
        if name in _SCALARS:
            stack.append(_Value(_SCALARS[name]))
        elif name in _STRINGS:
            stack.append(_Value("str", text=arg if len(arg) <= 256 else None))
        elif name in ("LONG1", "LONG4", "INT", "LONG"):
            if abs(arg).bit_length() > 8 * MAX_INT_BYTES - 1 and not isinstance(arg, bool):
                self.refuse(pos, "holds an integer too large for a size or offset")
            stack.append(_Value("bool" if isinstance(arg, bool) else "int"))
        elif name == "MARK":
            stack.append(_MARK)
        elif name == "EMPTY_TUPLE":
            stack.append(_Value("tuple", 1, items=[]))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            count = int(name[-1])
            items = [self.pop(pos) for _ in range(count)][::-1]
            self.push_container("tuple", items, pos)
        elif name == "TUPLE":
            items = self.pop_mark(pos)
            self.push_container("tuple", items, pos)
        elif name == "EMPTY_DICT":
            stack.append(_Value("dict", 1))
        elif name == "EMPTY_LIST":
            stack.append(_Value("list", 1))
        elif name in ("SETITEM", "SETITEMS", "APPEND", "APPENDS"):
            if name in ("SETITEM", "APPEND"):
                items = [self.pop(pos) for _ in range(2 if name == "SETITEM" else 1)][::-1]
            else:
                items = self.pop_mark(pos)
            if not stack or stack[-1] is _MARK:
                self.refuse(pos, "is malformed (stack underflow)")
            self.add_to(stack[-1], items, pos, keyed=name.startswith("SET"))
        elif name in _PUTS:
            if not stack or stack[-1] is _MARK:
                self.refuse(pos, "is malformed (memoizes a mark)")
            self.memo[arg] = stack[-1]
        elif name == "MEMOIZE":
            if not stack or stack[-1] is _MARK:
                self.refuse(pos, "is malformed (memoizes a mark)")
            self.memo[len(self.memo)] = stack[-1]
        elif name in _GETS:
            if arg not in self.memo:
                self.refuse(pos, "is malformed (reads an unset memo entry)")
            stack.append(self.memo[arg])
        elif name in ("GLOBAL", "STACK_GLOBAL"):
            if name == "GLOBAL":
                module, _, attr = arg.partition(" ")
            else:
                attr_value, module_value = self.pop(pos), self.pop(pos)
                module, attr = module_value.text, attr_value.text
            if (module, attr) not in _ALLOWED_GLOBALS:
                shown = f"{module}.{attr}" if isinstance(module, str) and isinstance(attr, str) else "an unnamed global"
                self.refuse(pos, f"asks for the global {shown[:80]}, which model weights do not need (possibly malicious)")
            stack.append(_Value("global", text=(module, attr)))
        elif name == "REDUCE":
            args, func = self.pop(pos), self.pop(pos)
            stack.append(self.call(func, args, pos))
        elif name == "BUILD":
            state = self.pop(pos)
            if not stack or stack[-1].kind != "odict" or state.kind not in ("dict", "odict", "none"):
                self.refuse(pos, "sets the state of something other than a state dict")
            self.add_to(stack[-1], [], pos, keyed=True)  # sealed check
            state.sealed = True
        elif name == "BINPERSID":
            stack.append(self.persistent_id(self.pop(pos), pos))
        elif name == "POP":
            self.pop(pos)
        elif name == "POP_MARK":
            self.pop_mark(pos)
        elif name == "DUP":
            stack.append(self.pop(pos))
            stack.append(stack[-1])
        elif name == "STOP":
            if len(stack) != 1:
                self.refuse(pos, "is malformed (leaves the stack unbalanced)")
            self.stopped = True
        else:
            self.refuse(pos, f"uses the opcode {name}, which a state dict does not need")

    def persistent_id(self, pid, pos):
        items = pid.items or []
        if not (
            pid.kind == "tuple" and len(items) == 5
            and items[0].kind == "str" and items[0].text == "storage"
            and items[1].kind == "global" and items[1].text[0] == "torch"
            and items[2].kind == "str" and items[3].kind == "str" and items[4].kind == "int"
        ):
            self.refuse(pos, "has a persistent id other than (\"storage\", type, key, location, size)")
        return _Value("storage")

    def call(self, func, args, pos):
        target = func.text if func.kind == "global" else None
        items = args.items if args.kind == "tuple" else None
        if items is None:
            self.refuse(pos, "calls a function with malformed arguments")
        if target == _ODICT and not items:
            return _Value("odict", 1)
        if target == _REBUILD_TENSOR and 6 <= len(items) <= 7:
            storage, offset, size, stride = items[:4]
            if storage.kind == "storage" and offset.kind == "int" and _int_tuple(size) and _int_tuple(stride):
                return _Value("tensor")
        if target == _REBUILD_PARAMETER and len(items) == 3 and items[0].kind == "tensor":
            return _Value("tensor")
        shown = ".".join(target) if target else func.kind
        self.refuse(pos, f"calls {shown[:80]} with arguments a state dict does not use")


def _int_tuple(value):
    return value.kind == "tuple" and len(value.items) <= MAX_DIMS and all(item.kind == "int" for item in value.items)

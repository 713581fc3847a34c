"""Building the compiled kernels module `aot_kernels` loads: ``python -m pipeline.stages.aot_build``, in a process
of its own (numba's dispatchers: started with ``CLEANCORPUS_AOT=0``), in the background after a run
(`aot_kernels.build_in_background`).

What it compiles: each kernel that Python code names (outside compiled functions: `python_level_names`; a
kernel only other kernels call is compiled into them), with every signature numba's cache holds for it on
this CPU. A signature is exported only if a sample of its argument types types back to it under numba's
``typeof`` (so that the guard's key of those arguments means that signature); literal, omitted and other
types no Python call passes are left to numba. The extension is compiled by ``numba.pycc`` for this
machine's CPU with its features (the JIT's: LLVM picks the same instructions, so floating-point results are
the same), each function typed on its own flags (pycc shares one ``Flags`` between functions, and a
function's compile can turn SSA off for the next: a typing error; the GIL released where the kernel says
``nogil=True``, as numba's dispatcher does), and its returned arrays boxed with their
type from the module's constants (pycc unpickles ``numpy.ndarray`` at every returned array otherwise:
~0.4 µs each).
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib
import marshal
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pipeline.stages import aot_kernels
from pipeline.stages.base import with_digest

_GUARD_C = r"""
/* A kernel's exported functions chosen by its arguments' types (pipeline/stages/aot_build.py). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <structmember.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <numpy/arrayscalars.h>

#define KEY_MAX 400
/* dtypes numba types by their number alone (not datetimes: their unit; not structured ones) */
#define NUMERIC(t) (((t) >= NPY_BOOL && (t) <= NPY_CLONGDOUBLE) || (t) == NPY_HALF)

/* Appends the key of v's type (what numba's typeof tells apart for the types kernels take) to buf;
   -1 for a value whose key is not made here (the call then goes to numba). */
static int put_key(PyObject *v, char *buf, Py_ssize_t *n, int depth)
{
    int code;
    if (*n + 8 > KEY_MAX)
        return -1;
    if (PyArray_CheckExact(v)) {
        PyArrayObject *a = (PyArrayObject *)v;
        int flags = PyArray_FLAGS(a), type = PyArray_TYPE(a);
        if (!NUMERIC(type))
            return -1;
        buf[(*n)++] = 'A';
        buf[(*n)++] = (char)type;
        buf[(*n)++] = (char)PyArray_NDIM(a);
        buf[(*n)++] = (flags & NPY_ARRAY_C_CONTIGUOUS) ? 'C' : (flags & NPY_ARRAY_F_CONTIGUOUS) ? 'F' : 'A';
        buf[(*n)++] = (char)(((flags & NPY_ARRAY_WRITEABLE) ? 1 : 0) | ((flags & NPY_ARRAY_ALIGNED) ? 2 : 0)
                             | (PyArray_ISNOTSWAPPED(a) ? 4 : 0));
        return 0;
    }
    if (PyBool_Check(v)) {
        code = NPY_BOOL;
    } else if (PyLong_CheckExact(v)) {
        int overflow = 0;
        PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow || PyErr_Occurred()) {
            PyErr_Clear();
            return -1;
        }
        code = NPY_INT64;
    } else if (PyFloat_CheckExact(v)) {
        code = NPY_DOUBLE;
    } else if (PyArray_IsScalar(v, Generic)) {
        PyArray_Descr *d = PyArray_DescrFromScalar(v);
        if (d == NULL) {
            PyErr_Clear();
            return -1;
        }
        code = d->type_num;
        Py_DECREF(d);
        if (!NUMERIC(code))
            return -1;
    } else if (v == Py_None) {
        buf[(*n)++] = 'N';
        return 0;
    } else if (PyTuple_CheckExact(v) && depth < 8) {
        Py_ssize_t i, size = PyTuple_GET_SIZE(v);
        buf[(*n)++] = '(';
        for (i = 0; i < size; i++)
            if (put_key(PyTuple_GET_ITEM(v, i), buf, n, depth + 1) < 0)
                return -1;
        if (*n + 1 > KEY_MAX)
            return -1;
        buf[(*n)++] = ')';
        return 0;
    } else {
        return -1;
    }
    buf[(*n)++] = 's';
    buf[(*n)++] = (char)code;
    return 0;
}

/* The key of a call's arguments, or NULL (no error set) where it is not made here. */
static PyObject *args_key(PyObject *const *args, Py_ssize_t nargs)
{
    char buf[KEY_MAX];
    Py_ssize_t i, n = 0;
    for (i = 0; i < nargs; i++)
        if (put_key(args[i], buf, &n, 0) < 0)
            return NULL;
    return PyBytes_FromStringAndSize(buf, n);
}

typedef struct {
    PyObject_HEAD
    PyObject *table;    /* dict: argument key -> exported function */
    PyObject *fallback; /* called for any other call (numba's dispatcher) */
    vectorcallfunc vectorcall;
    PyObject *dict;     /* attributes: py_func, __name__, ... as a dispatcher's */
} Kernel;

static PyObject *Kernel_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Kernel *k = (Kernel *)self;
    if (kwnames == NULL || PyTuple_GET_SIZE(kwnames) == 0) {
        PyObject *key = args_key(args, PyVectorcall_NARGS(nargsf));
        if (key == NULL && PyErr_Occurred())
            return NULL;
        if (key != NULL) {
            PyObject *f = PyDict_GetItemWithError(k->table, key);
            Py_DECREF(key);
            if (f != NULL)
                return PyObject_Vectorcall(f, args, nargsf, NULL);
            if (PyErr_Occurred())
                return NULL;
        }
    }
    return PyObject_Vectorcall(k->fallback, args, nargsf, kwnames);
}

static PyObject *Kernel_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *table, *fallback;
    Kernel *self;
    if (!PyArg_ParseTuple(args, "O!O:Kernel", &PyDict_Type, &table, &fallback))
        return NULL;
    self = (Kernel *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    Py_INCREF(table);
    Py_INCREF(fallback);
    self->table = table;
    self->fallback = fallback;
    self->vectorcall = Kernel_vectorcall;
    return (PyObject *)self;
}

static void Kernel_dealloc(Kernel *self)
{
    Py_XDECREF(self->table);
    Py_XDECREF(self->fallback);
    Py_XDECREF(self->dict);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef Kernel_members[] = {
    {"table", T_OBJECT, offsetof(Kernel, table), READONLY, "argument key -> exported function"},
    {"fallback", T_OBJECT, offsetof(Kernel, fallback), READONLY, "called for any other call"},
    {NULL}
};

static PyGetSetDef Kernel_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL}
};

static PyTypeObject KernelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "aot_guard.Kernel",
    .tp_basicsize = sizeof(Kernel),
    .tp_dealloc = (destructor)Kernel_dealloc,
    .tp_vectorcall_offset = offsetof(Kernel, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "A kernel: its exported function for the arguments' types, else the fallback.",
    .tp_members = Kernel_members,
    .tp_getset = Kernel_getset,
    .tp_dictoffset = offsetof(Kernel, dict),
    .tp_new = Kernel_new,
};

static PyObject *py_args_key(PyObject *self, PyObject *args)
{
    PyObject *key = args_key(&PyTuple_GET_ITEM(args, 0), PyTuple_GET_SIZE(args));
    if (key == NULL && !PyErr_Occurred())
        Py_RETURN_NONE;
    return key;
}

static PyMethodDef methods[] = {
    {"args_key", py_args_key, METH_VARARGS, "The key of these arguments' types (bytes), or None."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "aot_guard", NULL, -1, methods};

PyMODINIT_FUNC PyInit_aot_guard(void)
{
    PyObject *m;
    import_array();
    if (PyType_Ready(&KernelType) < 0)
        return NULL;
    m = PyModule_Create(&moduledef);
    if (m == NULL)
        return NULL;
    Py_INCREF(&KernelType);
    if (PyModule_AddObject(m, "Kernel", (PyObject *)&KernelType) < 0) {
        Py_DECREF(&KernelType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
"""


def python_level_names(package: str) -> set[str]:
    """Every name (variable, attribute, imported name) the package's Python code uses outside the bodies of
    functions numba compiles (decorated ``njit`` or ``intrinsic``): the kernels among them are those Python
    calls."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef) and any(
                "njit" in ast.unparse(d) or "intrinsic" in ast.unparse(d) for d in child.decorator_list
            ):
                continue
            if isinstance(child, ast.Name):
                names.add(child.id)
            elif isinstance(child, ast.Attribute):
                names.add(child.attr)
            elif isinstance(child, ast.alias):
                names.add(child.asname or child.name.rsplit(".", 1)[-1])
            visit(child)

    for folder, _, files in os.walk(package):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    visit(ast.parse(f.read()))
    return names


def sample(numba_type: Any) -> Any:
    """A value numba's typeof types as ``numba_type``, or raises ValueError (a type no call from Python passes
    that the guard tells apart)."""
    import numpy as np
    from numba.core import types
    from numba.np.numpy_support import as_dtype

    if isinstance(numba_type, types.Array):
        if not isinstance(numba_type.dtype, types.Boolean | types.Integer | types.Float | types.Complex):
            raise ValueError(numba_type)
        shape = (2,) * numba_type.ndim
        if numba_type.layout == "C":
            value = np.zeros(shape, as_dtype(numba_type.dtype))
        elif numba_type.layout == "F" and numba_type.ndim > 1:
            value = np.zeros(shape, as_dtype(numba_type.dtype), order="F")
        elif numba_type.layout == "A":
            value = np.zeros(tuple(4 for _ in shape), as_dtype(numba_type.dtype))[(slice(None, None, 2),) * len(shape)]
        else:
            raise ValueError(numba_type)
        if not numba_type.mutable:
            value.setflags(write=False)
        return value
    if isinstance(numba_type, types.BaseTuple):
        return tuple(sample(t) for t in numba_type.types)
    if numba_type == types.int64:
        return 0
    if numba_type == types.float64:
        return 0.0
    if numba_type == types.boolean:
        return False
    if isinstance(numba_type, types.Integer | types.Float):
        return as_dtype(numba_type).type(0)
    if isinstance(numba_type, types.NoneType):
        return None
    raise ValueError(numba_type)


def _build_guard(toolchain: Any, folder: Path, work: Path) -> Path:
    import numpy as np

    source = work / f"{aot_kernels._GUARD}.c"
    source.write_text(_GUARD_C)
    objects = toolchain.compile_objects(
        [str(source)], str(work), include_dirs=[np.get_include(), *toolchain.get_python_include_dirs()]
    )
    out = folder / toolchain.get_ext_filename(aot_kernels._GUARD)
    toolchain.link_shared(
        str(out),
        objects,
        toolchain.get_python_libraries(),
        toolchain.get_python_library_dirs(),
        export_symbols=[f"PyInit_{aot_kernels._GUARD}"],
    )
    return out


def _patch_pycc(nogil: set[Any]) -> None:
    """pycc as described above: a fresh ``Flags`` for each function, releasing the GIL for the functions in
    ``nogil`` (kernels declared ``nogil=True``: pycc's default holds it); the JIT's CPU features; returned arrays'
    Python type from the module's constants."""
    import numba.pycc.compiler as pycc_compiler
    from numba.core import boxing, cgutils, types  # noqa: F401 - (boxing: its box_array registered)
    from numba.core.codegen import AOTCPUCodegen
    from numba.core.pythonapi import _boxers
    from numba.np import numpy_support

    compile_extra = pycc_compiler.compile_extra

    def fresh_flags(typing: Any, target: Any, func: Any, args: Any, ret: Any, flags: Any, **kwargs: Any) -> Any:
        flags = flags.copy()
        flags.release_gil = func in nogil
        return compile_extra(typing, target, func, args, ret, flags, **kwargs)

    pycc_compiler.compile_extra = fresh_flags
    AOTCPUCodegen._customize_tm_features = lambda self: self._get_host_cpu_features()  # type: ignore[method-assign]

    box_array = _boxers.functions[types.Array]

    def box_array_type_from_constants(typ: Any, val: Any, c: Any) -> Any:
        if not c.context.enable_nrt:
            return box_array(typ, val, c)
        from llvmlite import ir

        dtype = c.env_manager.read_const(c.env_manager.add_const(numpy_support.as_dtype(typ.dtype)))
        pytype = c.env_manager.read_const(c.env_manager.add_const(typ.box_type))
        pyapi = c.pyapi
        fnty = ir.FunctionType(pyapi.pyobj, [pyapi.voidptr, pyapi.pyobj, ir.IntType(32), ir.IntType(32), pyapi.pyobj])
        fn = pyapi._get_function(fnty, name="NRT_adapt_ndarray_to_python_acqref")
        fn.args[0].add_attribute("captures(none)")
        ndim = c.context.get_constant(types.int32, typ.ndim)
        writable = c.context.get_constant(types.int32, int(typ.mutable))
        ptr = c.builder.bitcast(cgutils.alloca_once_value(c.builder, val), pyapi.voidptr)
        boxed = c.builder.call(fn, [ptr, pytype, ndim, writable, dtype])
        c.context.nrt.decref(c.builder, typ, val)  # (the new array holds the reference: numba's box_array)
        return boxed

    _boxers.functions[types.Array] = box_array_type_from_constants


def build(key: str, modules: tuple[str, ...] = aot_kernels.KERNEL_MODULES) -> Path | None:
    """Compile the module for ``key`` (this process's `aot_kernels.build_key`) into its folder, with the kernels
    of ``modules`` (all by default; fewer in tests); the folder, or None where nothing is exported."""
    import numba
    from numba.core.registry import CPUDispatcher, cpu_target
    from numba.pycc import CC
    from numba.pycc.platform import Toolchain

    started = time.perf_counter()
    for name in aot_kernels.KERNEL_MODULES:  # (all: a kernel's callees)
        importlib.import_module(f"pipeline.stages.{name[:-3]}")
    exported = [sys.modules[f"pipeline.stages.{name[:-3]}"] for name in modules]
    called = python_level_names(aot_kernels._PACKAGE)
    magic = cpu_target.target_context.codegen().magic_tuple()
    nogil: set[Any] = set()
    _patch_pycc(nogil)
    work = Path(tempfile.mkdtemp(prefix="cleancorpus-aot-"))
    final = aot_kernels.build_folder(key)
    folder = final.with_name(f"{final.name}.{os.getpid()}.tmp")
    try:
        folder.mkdir(parents=True)
        toolchain = Toolchain()
        guard = aot_kernels._load_extension(aot_kernels._GUARD, _build_guard(toolchain, folder, work))
        cc = CC(aot_kernels._EXT)
        cc.output_dir = str(folder)
        cc.target_cpu = "host"
        kernels: dict[str, dict[str, list[tuple[bytes, str]]]] = {}
        count = 0
        for module in exported:
            for attr, disp in sorted(vars(module).items()):
                if not isinstance(disp, CPUDispatcher) or disp.__module__ != module.__name__ or attr not in called:
                    continue
                if disp.targetoptions.get("inline", "never") != "never":
                    continue
                for index_key in sorted(disp._cache._cache_file._load_index(), key=str):
                    sig, index_magic = index_key[0], index_key[1]
                    if index_magic != magic:
                        continue
                    try:
                        args = tuple(sample(t) for t in sig)
                    except (ValueError, NotImplementedError):
                        continue
                    if tuple(numba.typeof(a) for a in args) != tuple(sig):
                        continue
                    guard_key = guard.args_key(*args)
                    if guard_key is None:
                        continue
                    disp.compile(sig)
                    result = disp.overloads[tuple(sig)]
                    export = f"k{count}"
                    count += 1
                    cc.export(export, result.signature)(disp.py_func)
                    if disp.targetoptions.get("nogil"):
                        nogil.add(disp.py_func)
                    qualname = disp.py_func.__qualname__
                    kernels.setdefault(module.__name__, {}).setdefault(qualname, []).append((guard_key, export))
        if not count:
            return None
        cc.compile()
        files = {}
        for path in folder.iterdir():
            files[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
        manifest = {"kernels": kernels, "files": files, "exports": count, "seconds": time.perf_counter() - started}
        (folder / aot_kernels._MANIFEST).write_bytes(with_digest(marshal.dumps(manifest)))
        if final.exists():  # (damaged, or a build beside this one: replaced)
            old = final.with_name(f"{final.name}.{os.getpid()}.old")
            os.rename(final, old)
            shutil.rmtree(old, ignore_errors=True)
        os.rename(folder, final)
        for other in final.parent.glob("aot-*"):  # (earlier builds: other sources, numba, ...: never used again)
            if other.name != final.name and not other.name.endswith((".building", ".tmp")):
                shutil.rmtree(other, ignore_errors=True) if other.is_dir() else other.unlink(missing_ok=True)
        return final
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    if aot_kernels.active():
        return 2  # (run with CLEANCORPUS_AOT=0: numba's dispatchers are what is compiled)
    with contextlib.suppress(OSError):
        os.nice(10)
    key = aot_kernels.build_key()
    lock = aot_kernels.build_folder(key).with_suffix(".building")
    try:
        folder = build(key)
    except Exception as err:  # noqa: BLE001 - recorded, so that no later run tries again for this key
        import traceback

        text = "".join(traceback.format_exception(err))
        aot_kernels.build_folder(key).with_suffix(".failed").write_text(text)
        folder = None
    finally:
        lock.unlink(missing_ok=True)
    return 0 if folder is not None else 1


if __name__ == "__main__":
    sys.exit(main())

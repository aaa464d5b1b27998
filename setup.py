"""Build and install dgl_ltd.

The compiled module ``dgl_ltd._C`` (per-node tempered-softmax KD kernel) is built from ``csrc/``
when torch is importable at build time (``pip install --no-build-isolation``). The CPU part is
always built; the CUDA part only when torch sees a GPU or ``FORCE_CUDA=1`` (and nvcc is found),
so a CPU install never needs nvcc. A failed build does not stop the install but is reported in a
banner on stderr (pip shows it with ``-v``), and ``import dgl_ltd.ops`` warns;
``DGL_LTD_REQUIRE_EXT=1`` makes a failed build fail the install. ``DGL_LTD_NO_EXT=1`` skips the extension on
purpose (no warning): the package then runs the eager PyTorch expression with the same results.
"""
import glob
import os
import platform
import sys

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))

INSTALL_REQUIRES = [
    "torch==2.2.1",
    "dgl==2.1.0",
    "torchdata==0.7.1",
    "numpy<2",
    "pandas<2.3",
    "pydantic",
    "setuptools<70",
    "scipy",
    "scikit-learn",
    "tqdm",
    "pyyaml",  # dgl 2.1 imports it (graphbolt) without declaring it
    "psutil",
]


# The CPU row loops (csrc/cpu/isa/rows_<isa>.cpp) are compiled once per instruction set, as torch
# compiles its own vectorised kernels; the operator picks one at run time. Order matters: the
# baseline objects come first, so that the linker keeps their copy of any inline function that the
# ISA-specific objects also emit.
ISA_ORDER = ("default", "avx2", "avx512")
X86_ISA_FLAGS = {
    "default": [],
    "avx2": ["-mavx2", "-mfma"],
    "avx512": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx2", "-mfma"],
}


def is_x86_64() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def isa_flags(source: str) -> list:
    """Extra compiler flags of one source file: the instruction set of csrc/cpu/isa/rows_<isa>.cpp."""
    name = os.path.basename(source)
    for isa in ISA_ORDER:
        if name == f"rows_{isa}.cpp":
            # No contraction of a * b - c into one fused multiply-add: the backward must recompute
            # t / tau - lse exactly as the forward rounded it (the loops use fmadd where they mean it).
            flags = ["-ffp-contract=off", f"-DCPU_CAPABILITY={isa.upper()}"]
            return flags + [f"-DCPU_CAPABILITY_{isa.upper()}"] + X86_ISA_FLAGS[isa] if is_x86_64() else flags
    return []


def extension_sources() -> list:
    """Every C++ source under csrc/ (CUDA ones apart), the per-ISA row loops last, baseline first."""
    cpp = sorted(glob.glob(os.path.join("csrc", "**", "*.cpp"), recursive=True))
    isa_dir = os.path.join("csrc", "cpu", "isa")
    common = [f for f in cpp if not f.startswith(isa_dir)]
    return common + [os.path.join(isa_dir, f"rows_{isa}.cpp") for isa in ISA_ORDER]


def report_no_kernel(reason: str) -> None:
    """Say, where a pip install shows it (stderr), that the package installs without its kernel."""
    bar = "!" * 78
    sys.stderr.write(
        f"\n{bar}\n dgl_ltd: the compiled kernel dgl_ltd._C was NOT built:\n   {reason}\n"
        " The package still works through the eager PyTorch expression (same results, about 5x slower,\n"
        " 6x more memory); `import dgl_ltd.ops` will warn. Fix the cause and reinstall with\n"
        " `pip install --no-build-isolation .`, or set DGL_LTD_NO_EXT=1 to install without it on purpose.\n"
        f"{bar}\n\n"
    )


def extension_kwargs():
    if os.environ.get("DGL_LTD_NO_EXT") == "1":
        return {}
    try:
        import torch
        from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension
    except ImportError:
        report_no_kernel("torch is not importable at build time (use pip install --no-build-isolation)")
        return {}
    sources = extension_sources()
    cuda_sources = sorted(glob.glob(os.path.join("csrc", "cuda", "*.cu")))
    want_cuda = torch.cuda.is_available() or os.environ.get("FORCE_CUDA") == "1"
    # No -std flag: torch's BuildExtension appends the standard its headers need (c++17 for torch
    # 2.2; newer torch may need a newer one), which a hard-coded flag would override.
    # Compiled with -fopenmp (at::parallel_for's header uses `omp parallel`), but NOT linked with it:
    # the GOMP symbols then resolve, at import, to the OpenMP runtime torch itself loaded (our
    # DT_NEEDED libtorch_cpu pulls it in), so there is one thread pool, not a second runtime whose
    # spinning threads steal the cores from torch's operators.
    cxx_flags = ["-O3", "-fopenmp", "-Wno-unknown-pragmas"]  # torch's vec headers use `#pragma unroll`
    macros = [("DGL_LTD_ISA_FLAGS", None)] if is_x86_64() else []
    if want_cuda and cuda_sources and CUDA_HOME is not None:
        extension = CUDAExtension
        sources = sources + cuda_sources
        extra = {"cxx": cxx_flags, "nvcc": ["-O3", "--use_fast_math"]}
    else:
        if want_cuda:
            report_no_kernel("FORCE_CUDA=1 or a visible GPU asked for the CUDA kernels, but nvcc was not found "
                             "(CUDA_HOME unset); building the CPU kernels only")
        extension = CppExtension
        extra = {"cxx": cxx_flags}
    ext = extension(
        "dgl_ltd._C",
        sources,
        include_dirs=[os.path.join(HERE, "csrc")],
        depends=sorted(glob.glob(os.path.join("csrc", "**", "*.h"), recursive=True)),
        define_macros=macros,
        extra_compile_args=extra,
    )
    base = BuildExtension.with_options(use_ninja=False)

    class OptionalBuildExt(base):
        """Build the kernel (each ISA file with its flags), or say loudly that it is missing and go on."""

        def build_extension(self, extension_):
            compile_one = self.compiler._compile

            def compile_with_isa_flags(obj, src, ext_, cc_args, extra_postargs, pp_opts):
                flags = isa_flags(src)
                if flags and isinstance(extra_postargs, dict):
                    extra_postargs = dict(extra_postargs, cxx=list(extra_postargs.get("cxx", [])) + flags)
                elif flags:
                    extra_postargs = list(extra_postargs or []) + flags
                return compile_one(obj, src, ext_, cc_args, extra_postargs, pp_opts)

            self.compiler._compile = compile_with_isa_flags
            try:
                super().build_extension(extension_)
            finally:
                self.compiler._compile = compile_one

        def run(self):
            try:
                super().run()
            except Exception as exc:  # no compiler, or a toolchain that cannot build against this torch
                report_no_kernel(f"{type(exc).__name__}: {exc}")
                if os.environ.get("DGL_LTD_REQUIRE_EXT") == "1":  # e.g. in CI: fail the install instead
                    raise

    return {"ext_modules": [ext], "cmdclass": {"build_ext": OptionalBuildExt}}


setup(
    name="dgl_ltd",
    version="0.1.0",
    description="Learning to Distill Graph Neural Networks (LTD) for DGL: node-specific learned temperatures",
    long_description=open(os.path.join(HERE, "README.md")).read() if os.path.exists(os.path.join(HERE, "README.md")) else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["dgl_ltd", "dgl_ltd.*"]),
    package_data={"dgl_ltd": ["_data/*.npz", "_data/*.csv"]},
    python_requires=">=3.9",
    install_requires=INSTALL_REQUIRES,
    extras_require={"bench": ["torch_geometric==2.5.3", "matplotlib"], "report": ["matplotlib"],
                    "test": ["pytest", "expecttest", "matplotlib"]},
    entry_points={"console_scripts": ["dgl-ltd=dgl_ltd.cli:main"]},
    **extension_kwargs(),
)

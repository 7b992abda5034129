"""shadho: Scalable Hardware-Aware Distributed Hyperparameter Optimization."""
from setuptools import setup

setup(
    name="shadho",
    version="0.1.0",
    description="Scalable Hardware-Aware Distributed Hyperparameter Optimization on Work Queue",
    long_description=open("README.md").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    # The batch-system code lives in the top-level batch/ folder and installs as shadho.batch;
    # the worker-side entry lives in workers/ and installs as the module shadho_worker.
    package_dir={"shadho": "shadho", "shadho.batch": "batch", "": "workers"},
    packages=["shadho", "shadho.samplers", "shadho.managers", "shadho.heuristics", "shadho.batch"],
    py_modules=["shadho_worker", "shadho_launch_worker", "shadho_checkpoint"],
    package_data={"shadho.batch": ["templates/*", "examples/*"]},
    install_requires=["numpy>=1.22", "scipy>=1.8", "cloudpickle>=2.0"],
    extras_require={
        # rich: terminal progress bars and tables; matplotlib: report plots; scikit-learn:
        # the report's parameter importance.
        "cli": ["rich>=12", "matplotlib>=3.5", "scikit-learn>=1.1"],
        "pandas": ["pandas>=1.4"],
        "test": ["pytest>=7", "hypothesis>=6", "scikit-learn>=1.1", "rich>=12", "matplotlib>=3.5",
                 "pandas>=1.4", "htcondor==24.0.*",
                 # playwright: drives the system's Chromium in the report tests
                 "playwright>=1.40"],
        # coco-experiment: the BBOB suite (module cocoex); hyperopt: its TPE as a peer.
        "bench": ["optuna>=4", "scikit-learn>=1.1", "matplotlib>=3.5", "coco-experiment>=2.6",
                  "hyperopt>=0.2.7"],
        # Optuna's GPSampler needs torch (large): only for bench/samplers.py's optuna-gp.
        "bench-gp": ["torch>=2"],
    },
    entry_points={"console_scripts": ["shadho=shadho.cli:main"]},
)

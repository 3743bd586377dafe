"""Data and figures of the dashboard's views; importable without Streamlit (tests call them)."""

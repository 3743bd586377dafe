"""The KNAS Studio lab dashboard (Streamlit + Plotly).

``app/views/`` holds plain modules (no Streamlit): one function computes a chart's rows or
statistics through :mod:`db` and :mod:`tasks`, a second draws them as a Plotly figure.
``app/screens/`` holds one file per page; ``app/main.py`` finds them and builds the navigation.
"""

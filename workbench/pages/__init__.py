"""The workbench's pages: one module per entry of ``workbench.app.PAGES``, each with ``router = APIRouter()``."""

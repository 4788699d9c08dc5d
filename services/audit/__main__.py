"""`python -m services.audit`: record the business stream and answer audit queries."""

from libs.runtime.runner import run_service
from services.audit.service import AuditService

raise SystemExit(run_service(AuditService()))

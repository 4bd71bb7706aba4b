"""The sales SLA workflow on Step Functions: start it when a lead is routed, release it when sales acts.

The state machine (infra/sla_workflow.asl.json) waits for a task token with the SLA as timeout; the
worker hands the token back with SendTaskSuccess on accept, recycle or disqualify.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError


class SlaWorkflow:
    def __init__(self, client: Any, state_machine_arn: str | None) -> None:
        self._client = client
        self._arn = state_machine_arn

    @property
    def enabled(self) -> bool:
        return bool(self._arn)

    def start(self, lead_id: str, run: int, accept_seconds: int, escalate_seconds: int) -> str | None:
        if not self._arn:
            return None
        name = f"sla-{lead_id}-{run}"  # one execution per routing: a retried start finds it, never doubles it
        payload = {
            "lead_id": lead_id,
            "sla_seconds": accept_seconds,
            "escalate_after_seconds": escalate_seconds,
        }
        try:
            answer = self._client.start_execution(
                stateMachineArn=self._arn, name=name, input=json.dumps(payload)
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise
            return f"{self._arn.replace(':stateMachine:', ':execution:')}:{name}"
        return str(answer["executionArn"])

    def resolve(self, task_token: str, outcome: str) -> bool:
        try:
            self._client.send_task_success(taskToken=task_token, output=json.dumps({"outcome": outcome}))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in (
                "TaskTimedOut",
                "InvalidToken",
                "TaskDoesNotExist",
            ):
                return False  # the workflow already moved on; nothing left to release
            raise
        except BotoCoreError:
            raise
        return True

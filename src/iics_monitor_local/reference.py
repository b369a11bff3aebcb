"""The examples on Informatica's page "Getting the export job status", verbatim.

Source: /work/shared/reference/iics-export-job-status.txt (REST API Reference, Platform REST API
version 3 resources). The ``*_TEXT`` constants are the page's text byte for byte; the dicts are
parsed from them, so the two can never drift apart. The emulator's reference job serves exactly
these bodies, and tests compare what a client receives against them.
"""

import json
from typing import Any

# First example: status while the job runs, requested without ?expand=objects.
STATUS_IN_PROGRESS_TEXT = (
    '{ "id": "7evG9CokA1whk8ehF3opKM", "createTime": "2017-10-26T08:15:48.502Z", "updateTime": '
    '"2017-10-26T08:15:48.502Z", "name": "testJob1", "startTime": "2017-10-26T08:15:48.501Z", '
    '"endTime": null, "status": { "state": "IN_PROGRESS", "message": "In Progress." }, "objects": '
    "null }"
)
STATUS_IN_PROGRESS: dict[str, Any] = json.loads(STATUS_IN_PROGRESS_TEXT)

# Second example: status of the finished job, requested with ?expand=objects.
STATUS_SUCCESSFUL_WITH_OBJECTS_TEXT = (
    '{ "id": "7evG9CokA1whk8ehF3opKM", "createTime": "2017-10-26T08:15:49.000Z", "updateTime": '
    '"2017-10-26T08:15:50.000Z", "name": "testJob1", "startTime": "2017-10-26T08:15:49.000Z", '
    '"endTime": "2017-10-26T08:15:50.000Z", "status": { "state": "SUCCESSFUL", "message": "Export '
    'completed successfully." }, "objects": [ { "id": "1MW0GDAE1sFgnvWkvom7mK", "name": "Linear '
    'Taskflow", "path": "/ICS Taskflow", "type": "SAAS_LINEAR_TASKFLOW", "description": null, '
    '"status": { "state": "SUCCESSFUL", "message": null } }, { "id": "1SuZ9Gf8LtphrJn9EdHCod", '
    '"name": "SQL Server", "path": "/DSS", "type": "Folder", "description": "", "status": { "state": '
    '"SUCCESSFUL", "message": null } }, { "id": "1Uf9PTj6kTjbsVYMk55OC6", "name": "Synchronization '
    'Task Multi Source", "path": "/Default/SQL Server", "type": "SAAS_DSS", "description": "", '
    '"status": { "state": "SUCCESSFUL", "message": null } }, { "id": "2UL9ZO9Z3OJeuxbL2cYbaX", '
    '"name": "Synchronization Task Simple Filter", "path": "/Default/SQL Server", "type": '
    '"SAAS_DSS", "description": "", "status": { "state": "SUCCESSFUL", "message": null } }, { "id": '
    '"31SzqpeEEKacy7OaXXCfaD", "name": "Synchronization Task Multi Source", "path": "/DSS/SQL '
    'Server", "type": "SAAS_DSS", "description": "", "status": { "state": "SUCCESSFUL", "message": '
    'null } }, { "id": "5FA0DnMzeuDbYZnn3hdto9", "name": "Default", "path": "/", "type": "Project", '
    '"description": "Auto-generated Default Project", "status": { "state": "SUCCESSFUL", "message": '
    'null } }, { "id": "5V5VpaoJGTNkWCB2f2t4MG", "name": "Synchronization Task Simple Filter", '
    '"path": "/DSS/SQL Server", "type": "SAAS_DSS", "description": "", "status": { "state": '
    '"SUCCESSFUL", "message": null } }, { "id": "7udJJF48H5Iizzry8gjUAb", "name": "SQL Server", '
    '"path": "/Default", "type": "Folder", "description": "", "status": { "state": "SUCCESSFUL", '
    '"message": null } }, { "id": "fIQLvhNnsqBjXKNfjyZFaH", "name": "ICS Taskflow", "path": "/", '
    '"type": "Project", "description": "", "status": { "state": "SUCCESSFUL", "message": null } }, { '
    '"id": "hGrgtrajWMUjNIsnLKQCAi", "name": "SQL Server Linux", "path": null, "type": '
    '"SAAS_CONNECTION", "description": null, "status": { "state": "SUCCESSFUL", "message": null } }, '
    '{ "id": "iIVBNZSpUKFg4N6g2PKUox", "name": "abc_map", "path": "/Default", "type": "MAPPING", '
    '"description": "", "status": { "state": "SUCCESSFUL", "message": null } }, { "id": '
    '"l7bgB85m5oGiXObDxwnvK9", "name": "DSS", "path": "/", "type": "Project", "description": "", '
    '"status": { "state": "SUCCESSFUL", "message": null } }, { "id": "lOqsFQE4OSWeyg77AeWwK2", '
    '"name": "Linux", "path": null, "type": "SAAS_RUNTIME_ENVIRONMENT", "description": null, '
    '"status": { "state": "SUCCESSFUL", "message": null } } ] }'
)
STATUS_SUCCESSFUL_WITH_OBJECTS: dict[str, Any] = json.loads(STATUS_SUCCESSFUL_WITH_OBJECTS_TEXT)

# The log example. The page flattens the log onto one line (the service itself breaks header and
# footer fields onto separate lines); this keeps the page's text as published, including its
# missing space in "...id [5UrdDrgV5yKerYgtJAA4IU]> OIE_004".
LOG_TEXT = (
    "> OIE_002 INFO 2019-02-05T22:50:08.788Z Starting export operation. Execution Client: API Job "
    "Name: m_RegionTotalNew-1549407002393 Organization: infa2.doc RequestId: iklHoZTokKAiNO95Cw9NG3 "
    "User: janer2 > OIE_004 INFO 2019-02-05T22:50:09.042Z Successfully exported object "
    "[/SYS/_SYSTEM_PROJECT] of type [Project] id [5UrdDrgV5yKerYgtJAA4IU]> OIE_004 INFO "
    "2019-02-05T22:50:09.042Z Successfully exported object [/Explore/Accounts] of type [Project] id "
    "[8Uyq1wiZ9lye2Sou5OCqOa] > OIE_004 INFO 2019-02-05T22:50:09.126Z Successfully exported object "
    "[/SYS/_SYSTEM_FOLDER] of type [Folder] id [b98UuC0ADGEkXxF9EIlUCZ] > OIE_004 INFO "
    "2019-02-05T22:50:09.126Z Successfully exported object [/Explore/Accounts/February2018] of type "
    "[Folder] id [cojSZpHcqcafFy6YkCBgIl] > OIE_004 INFO 2019-02-05T22:50:09.354Z Successfully "
    "exported object [/SYS/TMS26W0864] of type [SAAS_RUNTIME_ENVIRONMENT] id "
    "[6TKTNZ3wfIIjV5yBTJmYWO] > OIE_004 INFO 2019-02-05T22:50:09.504Z Successfully exported object "
    "[/SYS/ff] of type [SAAS_CONNECTION] id [7GgahDJzE9GbYb75xQ35GM] > OIE_004 INFO "
    "2019-02-05T22:50:09.765Z Successfully exported object "
    "[/Explore/Accounts/February2018/m_RegionTotalNew] of type [MAPPING] id [4LiKwGKgegAixI2awqWgK1] "
    "> OIE_003 INFO 2019-02-05T22:50:09.843Z Finished export operation. Job Name: "
    "m_RegionTotalNew-1549407002393 Start Time: 2019-02-05T22:50:03.000Z End Time: "
    "2019-02-05T22:50:09.765Z Started by: janer2 Start Method: API Source Organization: infa.doc "
    "Status: SUCCESSFUL"
)

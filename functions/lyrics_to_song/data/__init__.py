"""The data layer: the only code that speaks DynamoDB.

- `items`: Python values to DynamoDB's and back, update clauses, transactions;
- `rows`: a job's row (`Row`, `JobState`) and how it is read from an item;
- `task_table`: the tasks table, where every change of a job's state is a named,
  conditional write (`table_base`, the update they share; `follow_rows`, a task
  followed; `holds`, held jobs; `webhook_rows`, webhooks; `endings`, what an end
  writes and counts);
- `caps`: the spending table and the caps it keeps (songs per day, songs in flight),
  and tenants' own settings; `senders`, who may submit for which tenant; `spend`, what
  was spent; `pace`, the status-check budget and the poll watch.
"""

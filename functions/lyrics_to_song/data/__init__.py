"""The data layer: the only code that speaks DynamoDB.

- `items`: Python values to DynamoDB's and back, update clauses, transactions;
- `rows`: a job's row (`Row`, `JobState`) and how it is read from an item;
- `task_table`: the tasks table, where every change of a job's state is a named,
  conditional write;
- `caps`: the spending table and the caps it keeps (songs per day, songs in flight).
"""

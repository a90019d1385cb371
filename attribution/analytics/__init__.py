"""Customer analytics: RFM, lifetime value, revenue share, holdout lift, campaign economics.

Every metric is an additive (mergeable) state fed one event at a time, plus a pure function
that turns the state into numbers, so the stream and the batch report agree exactly. This
package never imports the streaming stack; see docs/analytics.md for the rules.
"""

package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/iacc/iacc/store"
)

// openRedis opens the configured Redis only.
func (c *cli) openRedis(ctx context.Context) (*redis.Client, error) {
	cfg, _, err := c.config()
	if err != nil {
		return nil, err
	}
	opt, err := redisOptions(cfg.RedisURL, 0)
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("connect to Redis (IACC_REDIS_URL): %w", err)
	}
	return rdb, nil
}

func (c *cli) queuesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "queues",
		Short: "Show every queue: size, pending, active, scheduled, retry, archived, latency, processed and failed today",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rdb, err := c.openRedis(cmd.Context())
			if err != nil {
				return err
			}
			defer rdb.Close()
			insp := asynq.NewInspectorFromRedisClient(rdb)
			names, err := insp.Queues()
			if err != nil {
				return fmt.Errorf("list queues: %w", err)
			}
			sort.Strings(names)
			tw := tabwriter.NewWriter(c.out, 2, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "QUEUE\tSIZE\tPENDING\tACTIVE\tSCHEDULED\tRETRY\tARCHIVED\tLATENCY\tPROCESSED TODAY\tFAILED TODAY\tPAUSED\t")
			for _, q := range names {
				info, err := insp.GetQueueInfo(q)
				if err != nil {
					return fmt.Errorf("queue %s: %w", q, err)
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t%t\t\n", q, info.Size, info.Pending, info.Active, info.Scheduled,
					info.Retry, info.Archived, info.Latency.Round(time.Millisecond), info.Processed, info.Failed, info.Paused)
			}
			if len(names) == 0 {
				fmt.Fprintln(tw, "(no queues yet: nothing has been enqueued)\t")
			}
			return tw.Flush()
		},
	}
}

func (c *cli) outboxCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "outbox", Short: "Inspect the transactional outbox"}
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "Show unpublished and undispatched events and the age of the oldest unpublished one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, _, err := c.openDB(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			st, err := store.GetOutboxStats(cmd.Context(), db)
			if err != nil {
				return err
			}
			oldest := "-"
			if st.OldestPending != nil {
				oldest = fmt.Sprintf("%s (%s ago)", st.OldestPending.Format(time.RFC3339), time.Since(*st.OldestPending).Round(time.Second))
			}
			fmt.Fprintf(c.out, "unpublished events:   %d\noldest unpublished:   %s\nundispatched events:  %d\n", st.Pending, oldest, st.Undispatched)
			if st.Pending > 0 {
				fmt.Fprintln(c.out, "unpublished events are published by the relay (iacc scheduler or iacc serve) as soon as Redis answers")
			}
			return nil
		},
	})
	return cmd
}

func (c *cli) tasksCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "tasks", Short: "Act on one background task (see iacc queues and the dashboard for ids)"}
	action := func(use, short string, fn func(insp *asynq.Inspector, queue, id string) error) *cobra.Command {
		return &cobra.Command{
			Use:   use + " QUEUE TASK_ID",
			Short: short,
			Args:  cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				rdb, err := c.openRedis(cmd.Context())
				if err != nil {
					return err
				}
				defer rdb.Close()
				insp := asynq.NewInspectorFromRedisClient(rdb)
				if err := fn(insp, args[0], args[1]); err != nil {
					if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
						return fmt.Errorf("no task %s in queue %s", args[1], args[0])
					}
					return fmt.Errorf("%s task %s: %w", use, args[1], err)
				}
				fmt.Fprintf(c.out, "%s: task %s in queue %s\n", use, args[1], args[0])
				return nil
			},
		}
	}
	cmd.AddCommand(
		action("retry", "Run an archived, retrying or scheduled task now", func(i *asynq.Inspector, q, id string) error { return i.RunTask(q, id) }),
		action("archive", "Archive a pending, scheduled or retrying task (it stops being retried)", func(i *asynq.Inspector, q, id string) error { return i.ArchiveTask(q, id) }),
		action("delete", "Delete a task that is not running", func(i *asynq.Inspector, q, id string) error { return i.DeleteTask(q, id) }),
	)
	return cmd
}

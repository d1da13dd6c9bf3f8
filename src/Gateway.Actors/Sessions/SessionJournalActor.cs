using System.Security.Cryptography;
using System.Text;
using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Gateway.Agents;

namespace Gateway.Actors.Sessions;

/// <summary>
/// A durable session's memory on disk: an event-sourced child of its <see cref="SessionActor"/> that
/// recovers the conversation from the journal (the latest snapshot, then the turns after it) and hands it
/// to its session, then records each completed turn (<see cref="TurnRecorded"/>) and, when asked, a
/// snapshot of the whole history (after which the events it covers are deleted, so a session's journal
/// stays as small as its memory). It keeps no copy of the history: the session holds it.
/// A child rather than the session itself: a journal that fails (Akka.Persistence stops an actor whose
/// write or recovery failed) takes down only this actor, and the session, which holds the turns waiting
/// and the clients to answer, fails the one turn in flight and starts a fresh journal for the next.
/// </summary>
public sealed class SessionJournalActor : UntypedPersistentActor
{
    private readonly int _maxHistoryEntries;
    private readonly SessionJournalSettings _settings;
    private readonly TimeProvider _clock;
    // Only while recovering: what the journal holds, handed to the session when recovery completes.
    private List<ConversationEntry>? _recovered = [];
    private int _eventsSinceSnapshot;
    private long _lastActive;
    private bool _forgetting;
    private bool _forgetAnswerDue;
    private int _deletesPending;

    public SessionJournalActor(string sessionKey, int maxHistoryEntries, SessionJournalSettings settings, TimeProvider clock)
    {
        PersistenceId = PersistenceIdFor(sessionKey);
        _maxHistoryEntries = maxHistoryEntries;
        _settings = settings;
        _clock = clock;
    }

    public static Props Props(string sessionKey, int maxHistoryEntries, SessionJournalSettings settings, TimeProvider? clock = null) =>
        Akka.Actor.Props.Create(() => new SessionJournalActor(sessionKey, maxHistoryEntries, settings, clock ?? TimeProvider.System));

    public override string PersistenceId { get; }

    private const string Prefix = "session/";
    private const string HashedPrefix = "session-sha256/";

    /// <summary>
    /// The journal's id for a session: its key as it is, or (for a key too long for the journal's column, 255
    /// characters) a hash of it, so that any key the gateway accepts can be kept.
    /// </summary>
    public static string PersistenceIdFor(string sessionKey) =>
        Prefix.Length + sessionKey.Length <= 200
            ? Prefix + sessionKey
            : HashedPrefix + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sessionKey)));

    /// <summary>The session key a journal id was made from; null for a hashed one (or an id that is not a session's).</summary>
    public static string? SessionKeyOf(string persistenceId) =>
        persistenceId.StartsWith(Prefix, StringComparison.Ordinal) ? persistenceId[Prefix.Length..] : null;

    protected override void OnRecover(object message)
    {
        switch (message)
        {
            case SnapshotOffer { Snapshot: SessionSnapshot snapshot }:
                _recovered = [.. snapshot.History];
                _lastActive = snapshot.LastActiveUnixMs;
                _eventsSinceSnapshot = 0;
                break;
            case TurnRecorded recorded:
                Append(_recovered!, recorded.UserText, recorded.ReplyText, _maxHistoryEntries);
                _lastActive = recorded.AtUnixMs;
                _eventsSinceSnapshot++;
                break;
            case RecoveryCompleted:
                OnRecovered();
                break;
        }
    }

    private void OnRecovered()
    {
        var history = _recovered!;
        _recovered = null;
        if (LastSequenceNr > 0 && _settings.Retention is { } retention
            && _clock.GetUtcNow().ToUnixTimeMilliseconds() - _lastActive > (long)retention.TotalMilliseconds)
        {
            // Idle for longer than the operator keeps sessions: forgotten before anyone reads it again.
            Log.Info("Session {0} was last active more than {1} ago; deleting its history", PersistenceId, retention);
            history.Clear();
            _eventsSinceSnapshot = 0;
            Forget(answer: false);
        }
        Context.Parent.Tell(new HistoryRecovered([.. history], _eventsSinceSnapshot));
    }

    protected override void OnCommand(object message)
    {
        switch (message)
        {
            case RecordTurn record:
                var recorded = new TurnRecorded(record.UserText, record.ReplyText, _clock.GetUtcNow().ToUnixTimeMilliseconds());
                // The session hears of the turn only once it is written: it then remembers it and lets the answer end.
                Persist(recorded, written => Context.Parent.Tell(written));
                break;
            case SaveHistory save:
                SaveSnapshot(new SessionSnapshot(save.History, _clock.GetUtcNow().ToUnixTimeMilliseconds()));
                break;
            case SaveSnapshotSuccess saved:
                // Everything up to the snapshot is in it: the events and older snapshots are not needed for recovery.
                // The last event the snapshot covers is kept (recovery skips it): a session with a row in the journal
                // is one the retention sweep can find (it lists the journal's ids).
                DeleteMessages(saved.Metadata.SequenceNr - 1);
                DeleteSnapshots(new SnapshotSelectionCriteria(saved.Metadata.SequenceNr - 1));
                // The deletes are with the store now: the session may stop (passivate) without losing them.
                Context.Parent.Tell(HistorySaved.Instance);
                break;
            case SaveSnapshotFailure failed:
                // Recovery still works from the events; the next snapshot tries again.
                Log.Warning("Session {0}: a snapshot could not be saved: {1}", PersistenceId, failed.Cause.Message);
                Context.Parent.Tell(HistorySaved.Instance);
                break;
            case ForgetHistory:
                Forget(answer: true);
                break;
            case DeleteMessagesSuccess or DeleteSnapshotsSuccess:
                OnDeleted(null);
                break;
            case DeleteMessagesFailure failed:
                OnDeleted(failed.Cause);
                break;
            case DeleteSnapshotsFailure failed:
                OnDeleted(failed.Cause);
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void Forget(bool answer)
    {
        _forgetAnswerDue = answer;
        _forgetting = true;
        _deletesPending = 2;
        DeleteMessages(LastSequenceNr);
        DeleteSnapshots(SnapshotSelectionCriteria.Latest);
    }

    private void OnDeleted(Exception? failure)
    {
        // Deletes after a snapshot need no answer; a failure there only leaves events a later snapshot deletes again.
        if (!_forgetting)
        {
            if (failure is not null) Log.Warning("Session {0}: old events could not be deleted: {1}", PersistenceId, failure.Message);
            return;
        }
        if (failure is null && --_deletesPending > 0) return;
        if (failure is not null) Log.Error(failure, "Session {0}: its history could not be deleted", PersistenceId);
        _forgetting = false;
        if (_forgetAnswerDue) Context.Parent.Tell(new HistoryForgotten(Deleted: failure is null));
    }

    protected override void OnPersistRejected(Exception cause, object @event, long sequenceNr)
    {
        // The journal refused this one event (it could not serialize it, say) and goes on; the session must hear
        // of it, or the answer waiting for this write would wait for ever.
        base.OnPersistRejected(cause, @event, sequenceNr);
        Context.Parent.Tell(TurnNotRecorded.Instance);
    }

    protected override void OnRecoveryFailure(Exception reason, object? message = null)
    {
        Log.Error(reason, "Session {0} could not be recovered from its journal", PersistenceId);
        base.OnRecoveryFailure(reason, message);
    }

    /// <summary>Adds a turn to a history, dropping the oldest entries beyond <paramref name="maxEntries"/> (a session's memory and its recovery alike).</summary>
    internal static void Append(List<ConversationEntry> history, string userText, string replyText, int maxEntries)
    {
        history.Add(new ConversationEntry(ConversationRole.User, userText));
        history.Add(new ConversationEntry(ConversationRole.Assistant, replyText));
        var excess = history.Count - maxEntries;
        if (excess > 0) history.RemoveRange(0, excess);
    }
}

/// <summary>How durable sessions keep their journal (<c>gateway.sessions</c>).</summary>
/// <param name="SnapshotEvery">Turns recorded between two snapshots of a session's history.</param>
/// <param name="Retention">A session idle for longer is deleted when it is next opened; null: kept for ever.</param>
public sealed record SessionJournalSettings(int SnapshotEvery = 50, TimeSpan? Retention = null);

/// <summary>What goes into the journal and the snapshot store, with its own serializer (<see cref="SessionJournalSerializer"/>).</summary>
public interface ISessionJournalRecord;

/// <summary>One completed turn of a session: what the user said and what the agent answered (as the session remembers it).</summary>
public sealed record TurnRecorded(string UserText, string ReplyText, long AtUnixMs) : ISessionJournalRecord;

/// <summary>A session's whole history at one point, and when it was last active.</summary>
public sealed record SessionSnapshot(IReadOnlyList<ConversationEntry> History, long LastActiveUnixMs) : ISessionJournalRecord;

/// <summary>The session asks its journal to record a turn; the journal answers with the <see cref="TurnRecorded"/> once written.</summary>
internal sealed record RecordTurn(string UserText, string ReplyText);

/// <summary>The session asks its journal to snapshot its history.</summary>
internal sealed record SaveHistory(IReadOnlyList<ConversationEntry> History);

/// <summary>Delete the session's events and snapshots; the journal answers its session with <see cref="HistoryForgotten"/>.</summary>
internal sealed record ForgetHistory
{
    public static ForgetHistory Instance { get; } = new();
}

/// <summary>The journal has recovered the history (<paramref name="EventsSinceSnapshot"/>: turns recorded after its last snapshot).</summary>
internal sealed record HistoryRecovered(ConversationEntry[] History, int EventsSinceSnapshot);

/// <summary>A snapshot the session asked for is saved (or failed): the session may passivate.</summary>
internal sealed record HistorySaved
{
    public static HistorySaved Instance { get; } = new();
}

/// <summary>The journal refused to write the turn (it goes on); the turn fails.</summary>
internal sealed record TurnNotRecorded
{
    public static TurnNotRecorded Instance { get; } = new();
}

/// <summary>Whether a session's history was deleted.</summary>
public sealed record HistoryForgotten(bool Deleted);

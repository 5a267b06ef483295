package storefront.searchnode;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

/**
 * SearchNode runs one real OpenSearch node on a loopback port: the search engine of the
 * storefront's tests, benchmarks and development server.
 *
 * <p>Usage: {@code java -jar searchnode.jar DIR PORT [CLUSTER NODE TRANSPORT_PORT MANAGER
 * MANAGER_TRANSPORT_PORT]}. DIR holds the node's data and logs; PORT is the HTTP port on
 * 127.0.0.1. With two arguments the node is a single-node cluster. With seven it is the node
 * NODE of the cluster CLUSTER, on TRANSPORT_PORT, which finds the cluster through the node
 * MANAGER on MANAGER_TRANSPORT_PORT: MANAGER is the cluster manager and holds data, every
 * other node holds data only (a cluster of two survives the loss of a data node; production
 * clusters have three cluster-manager-eligible nodes). Plugins come from the class path (the
 * way OpenSearch's own integration tests start nodes): netty4 for HTTP and transport, and the
 * common analysis module for synonym_graph, stemmer and edge_ngram. The node runs until it
 * receives SIGTERM or SIGINT, then closes cleanly.
 */
public final class SearchNode {
    private SearchNode() {}

    /** PluginNode exposes Node's constructor that takes plugins from the class path. */
    private static final class PluginNode extends Node {
        PluginNode(Environment env, Collection<Class<? extends Plugin>> plugins) {
            super(env, plugins, true);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2 && args.length != 7) {
            System.err.println("usage: java -jar searchnode.jar DIR PORT [CLUSTER NODE TRANSPORT_PORT MANAGER MANAGER_TRANSPORT_PORT]");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        int port = Integer.parseInt(args[1]);
        Files.createDirectories(home.resolve("config"));
        Settings settings = args.length == 2
            ? settings(home, port).build()
            : clusterSettings(home, port, args[2], args[3], Integer.parseInt(args[4]), args[5], Integer.parseInt(args[6]));
        String name = settings.get("node.name");

        // Logging is configured by log4j2.properties in the jar (console only: the launcher's
        // output goes to DIR/node.log); the node name tags the lines.
        LogConfigurator.setNodeName(name);

        Environment env = InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), home.resolve("config"), () -> name);
        Node node = new PluginNode(env, List.of(Netty4Plugin.class, CommonAnalysisPlugin.class));
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "searchnode-shutdown"));
        node.start();
        System.out.println("searchnode: started on http://127.0.0.1:" + port);
        // The node's threads are daemons: keep the JVM alive until shutdown.
        stopped.await();
    }

    /** clusterSettings are those of node {@code node} of a cluster (see the usage above). */
    static Settings clusterSettings(Path home, int port, String cluster, String node, int transportPort, String manager, int managerPort) {
        Settings.Builder s = settings(home, port)
            .put("cluster.name", cluster)
            .put("node.name", node)
            .put("transport.port", transportPort)
            .putList("discovery.seed_hosts", "127.0.0.1:" + managerPort)
            .putList("cluster.initial_cluster_manager_nodes", manager);
        s.remove("discovery.type");
        return node.equals(manager)
            ? s.putList("node.roles", "cluster_manager", "data", "ingest").build()
            : s.putList("node.roles", "data", "ingest").build();
    }

    static Settings.Builder settings(Path home, int port) {
        return Settings.builder()
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("cluster.name", "storefront-search")
            .put("node.name", "searchnode")
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.port", port)
            // The transport layer is unused by a single node: any free port will do.
            .put("transport.port", 0)
            .put("http.type", "netty4")
            .put("transport.type", "netty4")
            // A nearly full disk must not turn test indices read-only.
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            // Writes go through aliases that the application creates; a write to a name
            // that does not exist must fail rather than create an index with guessed mappings.
            .put("action.auto_create_index", false);
    }
}

from hlops.cli import main

main()
